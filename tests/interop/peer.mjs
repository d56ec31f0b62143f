// An independent ActivityPub peer for fedipress's interop tests, built on Fedify 1.9.
//
// Interop is judged by an implementation that is not ours: every parse, signature check and
// lookup here is Fedify's own code. This file only wires Fedify up for loopback testing and
// reports what Fedify saw. It is a test harness, never a server to expose: it allows private
// addresses and plain http, and it has an unauthenticated control API.
//
//   node peer.mjs serve --port P [--username bob] [--log FILE] [--first-knock rfc9421|cavage]
//                       [--strict-content-type]
//   node peer.mjs lookup [--strict-content-type] TARGET
//                        (TARGET: alice@127.0.0.1:8001 or an http(s) URL)
//
// See README.md in this folder for the control API and the log format.

import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { configure } from "@logtape/logtape";
import {
  Accept,
  Activity,
  Announce,
  Create,
  Delete,
  Endpoints,
  Follow,
  Like,
  Mention,
  MemoryKvStore,
  Note,
  PUBLIC_COLLECTION,
  Person,
  Reject,
  Tombstone,
  Undo,
  Update,
  createFederation,
  generateCryptoKeyPair,
  getDocumentLoader,
  getTypeId,
  isActor,
  lookupObject,
  lookupWebFinger,
  signRequest,
  toAcctUrl,
  traverseCollection,
} from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";

// --- Fedify's own log messages -------------------------------------------------------------
// Fedify reports most refusals (wrong content type, id/origin mismatch, bad signature) only
// through its logger and then returns null or 401. We keep those messages so a failing test
// can say *why* Fedify refused, in Fedify's words.

const fedifyLogs = [];

function renderLogRecord(record) {
  const parts = record.message.map((part) => {
    if (typeof part === "string") return part;
    if (part instanceof Error) return `${part.name}: ${part.message}`;
    try {
      return JSON.stringify(part);
    } catch {
      return String(part);
    }
  });
  return { level: record.level, category: record.category.join("."), message: parts.join("") };
}

await configure({
  sinks: {
    memory: (record) => {
      fedifyLogs.push(renderLogRecord(record));
      if (fedifyLogs.length > 500) fedifyLogs.shift();
    },
  },
  loggers: [
    { category: "fedify", lowestLevel: "debug", sinks: ["memory"] },
    { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
  ],
});

function problemLogs() {
  return fedifyLogs.filter((r) => r.level === "warning" || r.level === "error" ||
    /fail|invalid|refus|disallow|not verified|mismatch|different origin/i.test(r.message));
}

// --- fetch: loopback has no TLS -------------------------------------------------------------
// Fedify resolves `acct:` handles over https only (lookupWebFinger), as every production
// server does. On 127.0.0.1 nothing speaks TLS, so the harness plays the part of a TLS
// terminator: a GET to https://<loopback>:<port>/... goes to http://<loopback>:<port>/....
// Only loopback hosts are rewritten. Every fetch is recorded (URL, status, Content-Type) so
// tests can see what was served, not just what Fedify concluded.

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const fetchLog = [];
const realFetch = globalThis.fetch.bind(globalThis);

// --strict-content-type: Fedify itself parses ActivityPub JSON served as application/json
// (its loader only special-cases HTML), but Mastodon >= 4.2.7 discards it
// (jsonld_helper.rb valid_activitypub_content_type?). With this flag the harness refuses,
// before Fedify sees the body, any ActivityPub fetch answered with another type, so one peer
// checks both. This one rule is the harness's, not Fedify's; everything else stays Fedify's.
let strictContentType = false;

function isActivityPubType(contentType) {
  if (contentType == null) return false;
  const [essence, ...params] = contentType.split(";").map((p) => p.trim());
  const type = essence.toLowerCase();
  if (type === "application/activity+json") return true;
  if (type !== "application/ld+json") return false;
  return params.some((p) => /^profile=/i.test(p) &&
    p.includes("https://www.w3.org/ns/activitystreams"));
}

const isHtmlType = (contentType) =>
  contentType != null && /^(text\/html|application\/xhtml\+xml)\s*(;|$)/i.test(contentType);

globalThis.fetch = async (input, init) => {
  let request = input instanceof Request ? input : new Request(input, init);
  const url = new URL(request.url);
  let rewrittenFrom = null;
  if (url.protocol === "https:" && LOOPBACK_HOSTS.has(url.hostname) &&
      (request.method === "GET" || request.method === "HEAD")) {
    rewrittenFrom = url.href;
    url.protocol = "http:";
    request = new Request(url, {
      method: request.method,
      headers: request.headers,
      redirect: request.redirect,
      signal: request.signal,
    });
  }
  const entry = { method: request.method, url: url.href };
  if (rewrittenFrom != null) entry.rewritten_from = rewrittenFrom;
  fetchLog.push(entry);
  try {
    const response = await realFetch(request, input instanceof Request ? init : undefined);
    entry.status = response.status;
    entry.content_type = response.headers.get("content-type");
    const wantsActivityPub = (request.headers.get("accept") ?? "")
      .includes("application/activity+json");
    if (strictContentType && wantsActivityPub && response.ok &&
        !isActivityPubType(entry.content_type) && !isHtmlType(entry.content_type)) {
      // HTML stays allowed: both Mastodon and Fedify follow its <link rel=alternate>.
      entry.rejected = `${url.href} was served as ${entry.content_type ?? "(no Content-Type)"}; ` +
        "Mastodon accepts only application/activity+json or application/ld+json; " +
        'profile="https://www.w3.org/ns/activitystreams"';
      throw new TypeError(entry.rejected);
    }
    return response;
  } catch (error) {
    entry.error ??= String(error?.cause ?? error);
    throw error;
  }
};

// Why a lookup failed, from what was served: the refusals above and failed requests.
function fetchProblems(since = 0) {
  return fetchLog.slice(since).flatMap((f) => {
    if (f.rejected != null) return [f.rejected];
    if (f.error != null && f.status == null) return [`${f.url}: ${f.error}`];
    if (f.status != null && f.status >= 400) return [`${f.url}: HTTP ${f.status}`];
    return [];
  });
}

// --- describing what Fedify parsed ----------------------------------------------------------

const loader = getDocumentLoader({ allowPrivateAddress: true });
const loaderOptions = { documentLoader: loader, contextLoader: loader };

function typeName(object) {
  if (object == null) return null;
  const id = getTypeId(object).href;
  return id.includes("#") ? id.slice(id.lastIndexOf("#") + 1) : id;
}

const href = (url) => (url == null ? null : url.href);
const text = (value) => (value == null ? null : value.toString());

async function collect(iterable, limit) {
  const out = [];
  for await (const item of iterable) {
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}

async function describeLink(link) {
  return { type: typeName(link), name: text(link.name), href: href(link.href ?? null) };
}

async function describeAttachment(item) {
  const url = item.url;
  return {
    type: typeName(item),
    name: text(item.name),
    media_type: item.mediaType ?? null,
    url: url == null ? null : (url instanceof URL ? url.href : href(url.href)),
  };
}

// A plain-data view of an object as Fedify parsed it (never the raw JSON).
async function describeObject(object, options = loaderOptions) {
  if (object == null) return null;
  const out = { type: typeName(object), id: href(object.id) };
  if (object instanceof Activity) {
    out.actor = href(object.actorId);
    out.object_id = href(object.objectId);
    let inner = null;
    try {
      inner = await object.getObject(options);
    } catch (error) {
      out.object_error = String(error);
    }
    if (inner != null) out.object = await describeObject(inner, options);
    return out;
  }
  out.attributed_to = href(object.attributionId);
  out.name = text(object.name);
  out.summary = text(object.summary);
  out.content = text(object.content);
  const url = object.url;
  out.url = url == null ? null : (url instanceof URL ? url.href : href(url.href));
  out.published = text(object.published);
  out.updated = text(object.updated);
  out.in_reply_to = href(object.replyTargetId);
  out.to = object.toIds.map((u) => u.href);
  out.cc = object.ccIds.map((u) => u.href);
  out.tags = [];
  for await (const tag of object.getTags(options)) {
    out.tags.push(tag instanceof Object && "href" in tag ? await describeLink(tag)
      : { type: typeName(tag), name: text(tag.name), id: href(tag.id) });
  }
  out.attachments = [];
  for await (const item of object.getAttachments(options)) {
    out.attachments.push(await describeAttachment(item));
  }
  // The post's collections as Fedify reads them (embedded or fetched): type, totalItems and,
  // for replies, the ids of its first page's items and where the next page is.
  for (const [key, getter] of [["replies", "getReplies"], ["likes", "getLikes"],
                               ["shares", "getShares"]]) {
    let collection = null;
    try {
      collection = await object[getter](options);
    } catch (error) {
      out[key] = { error: String(error) };
      continue;
    }
    out[key] = collection == null ? null : {
      id: href(collection.id),
      type: typeName(collection),
      total_items: collection.totalItems ?? null,
    };
    if (key === "replies" && collection != null) {
      const first = await collection.getFirst(options);
      out[key].first_items = first == null ? [] : first.itemIds.map((u) => u.href);
      out[key].first_next = first == null ? null : href(first.nextId);
    }
  }
  out.contexts = object.contextIds.map((u) => u.href);
  return out;
}

async function describeCollection(collection, pageLimit = 50) {
  if (collection == null) return null;
  const out = {
    id: href(collection.id),
    type: typeName(collection),
    total_items: collection.totalItems ?? null,
    first: href(collection.firstId),
  };
  let first = null;
  if (collection.firstId != null) {
    first = await collection.getFirst(loaderOptions);
    out.first_page = first == null ? null : {
      id: href(first.id),
      type: typeName(first),
      next: href(first.nextId),
      part_of: href(first.partOfId),
    };
  }
  const source = first ?? collection;
  const items = await collect(source.getItems(loaderOptions), pageLimit);
  out.first_page_items = await Promise.all(items.map((item) => describeObject(item)));
  // Walks every page the way a crawler would; bounded so a broken `next` loop cannot hang us.
  const all = await collect(traverseCollection(collection, loaderOptions), 1000);
  out.traversed_count = all.length;
  out.traversed_ids = all.map((item) => href(item.id));
  return out;
}

async function describeActor(actor) {
  const out = {
    kind: "actor",
    type: typeName(actor),
    id: href(actor.id),
    preferred_username: text(actor.preferredUsername),
    name: text(actor.name),
    summary: text(actor.summary),
    url: actor.url instanceof URL ? actor.url.href : href(actor.url?.href ?? null),
    inbox: href(actor.inboxId),
    shared_inbox: href(actor.endpoints?.sharedInbox ?? null),
    outbox_id: href(actor.outboxId),
    followers_id: href(actor.followersId),
    following_id: href(actor.followingId),
    manually_approves_followers: actor.manuallyApprovesFollowers ?? null,
    discoverable: actor.discoverable ?? null,
  };
  try {
    const key = await actor.getPublicKey(loaderOptions);
    out.public_key = key == null ? null : {
      id: href(key.id),
      owner: href(key.ownerId),
      parsed: key.publicKey instanceof CryptoKey,
      algorithm: key.publicKey?.algorithm?.name ?? null,
      modulus_bits: key.publicKey?.algorithm?.modulusLength ?? null,
    };
  } catch (error) {
    out.public_key = { parsed: false, error: String(error) };
  }
  for (const [name, getter] of [["outbox", "getOutbox"], ["followers", "getFollowers"]]) {
    try {
      out[name] = await describeCollection(await actor[getter](loaderOptions));
    } catch (error) {
      out[name] = { error: String(error) };
    }
  }
  return out;
}

// --- lookup mode ----------------------------------------------------------------------------

async function runLookup(target) {
  const isHandle = !/^https?:\/\//i.test(target);
  const result = { ok: false, target };
  try {
    if (isHandle) {
      const acct = toAcctUrl(target);
      if (acct == null) throw new Error(`not a fediverse handle: ${target}`);
      result.webfinger = await lookupWebFinger(acct, { allowPrivateAddress: true });
      if (result.webfinger == null) throw new Error(`WebFinger lookup of ${acct.href} failed`);
    }
    const object = await lookupObject(target, {
      ...loaderOptions,
      allowPrivateAddress: true, // read by lookupObject for its WebFinger step
      crossOrigin: "throw",
    });
    if (object == null) throw new Error(`Fedify could not resolve ${target}`);
    result.object = isActor(object) ? await describeActor(object)
      : { kind: "object", ...(await describeObject(object)) };
    result.ok = true;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    const problems = fetchProblems();
    if (problems.length > 0) result.error += ` (${problems.join("; ")})`;
  }
  result.strict_content_type = strictContentType;
  result.fetches = fetchLog;
  if (!result.ok) result.fedify_log = problemLogs();
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  if (!result.ok) {
    process.stderr.write(`lookup failed: ${result.error}\n`);
    for (const line of result.fedify_log) process.stderr.write(`  ${line.level}: ${line.message}\n`);
  }
  return result.ok ? 0 : 1;
}

// --- serve mode -----------------------------------------------------------------------------

function signatureInfo(headers) {
  // Which HTTP Signatures flavour the sender used; Fedify verifies both.
  const input = headers["signature-input"];
  const sig = headers["signature"];
  if (input != null) {
    const keyid = /keyid="([^"]*)"/i.exec(input);
    return { scheme: "rfc9421", key_id: keyid?.[1] ?? null };
  }
  if (sig != null) {
    const keyid = /keyId="([^"]*)"/.exec(sig);
    return { scheme: "draft-cavage-http-signatures-12", key_id: keyid?.[1] ?? null };
  }
  return { scheme: null, key_id: null };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function writeResponse(res, response) {
  const headers = {};
  response.headers.forEach((value, name) => { headers[name] = value; });
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

const jsonResponse = (body, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });

async function runServe(options) {
  const port = Number(options.port);
  const username = options.username;
  const logFile = options.log;
  const origin = `http://127.0.0.1:${port}`;
  if (logFile != null && !existsSync(logFile)) writeFileSync(logFile, "");
  const received = [];

  const record = (entry) => {
    const line = { received_at: new Date().toISOString(), ...entry };
    received.push(line);
    if (logFile != null) appendFileSync(logFile, JSON.stringify(line) + "\n");
  };

  const keyPair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
  const followers = new Map();   // actor id -> Actor (Fedify object)
  const following = new Map();   // actor id -> Follow id, once Accepted
  const sentFollows = new Map(); // Follow id -> { follow, target }
  const sent = new Map();        // id -> { json, activity?, recipient, deleted? }
  const outbox = [];             // public activities bob sent, newest last

  const federation = createFederation({
    kv: new MemoryKvStore(),
    origin,
    allowPrivateAddress: true,
    // Signatures are verified (the default); say so explicitly because it is the point.
    skipSignatureVerification: false,
    firstKnock: options["first-knock"] === "cavage" ? "draft-cavage-http-signatures-12"
      : "rfc9421",
  });

  federation
    .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
      if (identifier !== username) return null;
      const keys = await ctx.getActorKeyPairs(identifier);
      return new Person({
        id: ctx.getActorUri(identifier),
        preferredUsername: identifier,
        name: `${identifier} (Fedify interop peer)`,
        summary: "An independent ActivityPub implementation used by fedipress's tests.",
        url: ctx.getActorUri(identifier),
        inbox: ctx.getInboxUri(identifier),
        endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
        outbox: ctx.getOutboxUri(identifier),
        followers: ctx.getFollowersUri(identifier),
        following: ctx.getFollowingUri(identifier),
        publicKey: keys[0].cryptographicKey,
        assertionMethods: keys.map((k) => k.multikey),
      });
    })
    .setKeyPairsDispatcher((_ctx, identifier) => (identifier === username ? [keyPair] : []));

  federation
    .setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) => {
      if (identifier !== username) return null;
      return { items: [...followers.values()] };
    })
    .setCounter((_ctx, identifier) => (identifier === username ? followers.size : null));

  federation
    .setFollowingDispatcher("/users/{identifier}/following", (_ctx, identifier) => {
      if (identifier !== username) return null;
      return { items: [...following.keys()].map((id) => new URL(id)) };
    })
    .setCounter((_ctx, identifier) => (identifier === username ? following.size : null));

  federation
    .setOutboxDispatcher("/users/{identifier}/outbox", (_ctx, identifier) => {
      if (identifier !== username) return null;
      return { items: [...outbox].reverse() };
    })
    .setCounter((_ctx, identifier) => (identifier === username ? outbox.length : null));

  federation.setNodeInfoDispatcher("/nodeinfo/2.1", () => ({
    software: { name: "fedipress-interop-peer", version: "1.0.0" },
    protocols: ["activitypub"],
    usage: { users: { total: 1 }, localPosts: outbox.length },
  }));

  const newId = (kind) => new URL(`/${kind}/${randomUUID()}`, origin);

  async function remember(ctx, activity, recipient, { isPublic = false } = {}) {
    const json = await activity.toJsonLd({ contextLoader: ctx.contextLoader });
    sent.set(activity.id.href, { json, recipient: href(recipient?.id ?? null) });
    if (isPublic) outbox.push(activity);
    return json;
  }

  async function deliver(ctx, recipient, activity, { shared = false, isPublic = false } = {}) {
    const json = await remember(ctx, activity, recipient, { isPublic });
    await ctx.sendActivity({ identifier: username }, recipient, activity, {
      immediate: true,
      preferSharedInbox: shared,
    });
    return json;
  }

  async function onActivity(ctx, activity) {
    const raw = ctx.data.raw;
    const entry = {
      type: raw?.type ?? typeName(activity),
      id: href(activity.id),
      actor: href(activity.actorId),
      object_id: href(activity.objectId),
      object_type: raw != null && typeof raw.object === "object" && raw.object != null
        ? raw.object.type ?? null : null,
      inbox: ctx.recipient == null ? "shared" : "personal",
      recipient: ctx.recipient,
      // Fedify calls listeners only for requests it verified (HTTP signature, or an LD
      // signature / object proof that stands in for it).
      verified: true,
      signature: ctx.data.signature,
      ld_signature: raw != null && "signature" in raw,
      object_proof: raw != null && "proof" in raw,
      raw,
    };
    if (entry.object_type != null) {
      try {
        entry.parsed_object = await describeObject(await activity.getObject(ctx));
      } catch (error) {
        entry.parsed_object_error = String(error);
      }
    }
    if (activity instanceof Accept || activity instanceof Reject) {
      const followId = href(activity.objectId);
      const known = followId == null ? null : sentFollows.get(followId);
      let embeddedOk = true;
      if (raw != null && typeof raw.object === "object" && raw.object != null) {
        // An embedded Follow must be ours: our actor following the Accept's sender.
        const me = ctx.getActorUri(username).href;
        const objActor = typeof raw.object.actor === "string" ? raw.object.actor
          : raw.object.actor?.id;
        embeddedOk = objActor === me;
      }
      entry.matched_follow = known != null && embeddedOk;
      entry.matched_follow_id = known != null ? followId : null;
      if (known != null && activity instanceof Accept) {
        following.set(href(activity.actorId), followId);
      }
    }
    record(entry);
    if (activity instanceof Follow && activity.objectId?.href === ctx.getActorUri(username).href) {
      const follower = await activity.getActor(ctx);
      if (follower != null && isActor(follower)) {
        followers.set(follower.id.href, follower);
        const accept = new Accept({
          id: newId("activities"),
          actor: ctx.getActorUri(username),
          object: activity,
          to: follower.id,
        });
        await deliver(ctx, follower, accept);
      }
    }
    if (activity instanceof Undo) {
      const inner = raw != null && typeof raw.object === "object" ? raw.object : null;
      if (inner?.type === "Follow" && activity.actorId != null) {
        followers.delete(activity.actorId.href);
      }
    }
  }

  const listeners = federation.setInboxListeners("/users/{identifier}/inbox", "/inbox");
  // No de-duplication: the log must show every delivery, repeats included, so tests can
  // assert "delivered exactly once" themselves.
  listeners.withIdempotency(() => null);
  for (const cls of [Accept, Reject, Create, Update, Delete, Announce, Undo, Follow, Like,
    Activity]) {
    listeners.on(cls, onActivity);
  }
  listeners.onError((_ctx, error) => {
    record({ type: "listener-error", verified: true, error: String(error?.stack ?? error) });
  });

  // --- control API (tests only) ---

  async function targetOf(ctx, objectUrl, explicitActor) {
    const object = await ctx.lookupObject(objectUrl, { crossOrigin: "throw" });
    if (object == null) throw new Error(`Fedify could not resolve ${objectUrl}`);
    const actorRef = explicitActor ?? href(object.attributionId);
    if (actorRef == null) throw new Error(`${objectUrl} has no attributedTo`);
    const actor = await ctx.lookupObject(actorRef);
    if (actor == null || !isActor(actor)) throw new Error(`Fedify could not resolve ${actorRef}`);
    return { object, actor };
  }

  const me = (ctx) => ctx.getActorUri(username);

  const control = {
    "POST follow": async (ctx, body) => {
      const target = await ctx.lookupObject(body.handle ?? body.actor);
      if (target == null || !isActor(target)) {
        throw new Error(`Fedify could not resolve ${body.handle ?? body.actor}`);
      }
      const follow = new Follow({ id: newId("activities"), actor: me(ctx), object: target.id });
      sentFollows.set(follow.id.href, { follow, target });
      const json = await deliver(ctx, target, follow);
      return { id: follow.id.href, actor: target.id.href, inbox: href(target.inboxId), json };
    },
    "POST undo-follow": async (ctx, body) => {
      const followId = body.follow ?? [...sentFollows.keys()].at(-1);
      const known = sentFollows.get(followId);
      if (known == null) throw new Error(`no Follow ${followId} was sent`);
      const undo = new Undo({ id: newId("activities"), actor: me(ctx), object: known.follow });
      const json = await deliver(ctx, known.target, undo);
      following.delete(known.target.id.href);
      return { id: undo.id.href, follow: followId, json };
    },
    "POST like": async (ctx, body) => {
      const { object, actor } = await targetOf(ctx, body.object, body.to);
      const like = new Like({ id: newId("activities"), actor: me(ctx), object: object.id });
      const json = await deliver(ctx, actor, like, { shared: body.shared_inbox ?? true });
      return { id: like.id.href, object: object.id.href, json };
    },
    "POST announce": async (ctx, body) => {
      const { object, actor } = await targetOf(ctx, body.object, body.to);
      const announce = new Announce({
        id: newId("activities"),
        actor: me(ctx),
        object: object.id,
        to: PUBLIC_COLLECTION,
        ccs: [actor.id, ctx.getFollowersUri(username)],
        published: Temporal.Now.instant(),
      });
      const json = await deliver(ctx, actor, announce,
        { shared: body.shared_inbox ?? true, isPublic: true });
      return { id: announce.id.href, object: object.id.href, json };
    },
    "POST reply": async (ctx, body) => {
      const { object, actor } = await targetOf(ctx, body.object, body.to);
      const noteId = newId("notes");
      const now = Temporal.Now.instant();
      // The audience as Mastodon writes each visibility (public is the default).
      const followersUri = ctx.getFollowersUri(username);
      const audience = {
        public: { tos: [PUBLIC_COLLECTION, actor.id], ccs: [followersUri] },
        unlisted: { tos: [followersUri, actor.id], ccs: [PUBLIC_COLLECTION] },
        followers: { tos: [followersUri], ccs: [actor.id] },
        direct: { tos: [actor.id], ccs: [] },
      }[body.visibility ?? "public"];
      if (audience == null) throw new Error(`unknown visibility ${body.visibility}`);
      const note = new Note({
        id: noteId,
        attribution: me(ctx),
        content: body.content ?? "<p>Nice post!</p>",
        replyTarget: object.id,  // Fedify's name for inReplyTo (an unknown option is dropped)
        published: now,
        url: noteId,
        ...audience,
        tags: [new Mention({ href: actor.id, name: `@${text(actor.preferredUsername)}` })],
      });
      const create = new Create({
        id: newId("activities"),
        actor: me(ctx),
        object: note,
        ...audience,
        published: now,
      });
      sent.set(noteId.href, {
        json: await note.toJsonLd({ contextLoader: ctx.contextLoader }),
        recipient: actor.id.href,
        actor,
        note,
      });
      const json = await deliver(ctx, actor, create,
        { shared: body.shared_inbox ?? true, isPublic: true });
      return { id: create.id.href, note: noteId.href, json };
    },
    // FEP-044f: a Note quoting `object`, then a QuoteRequest for it, signed with bob's key and
    // POSTed as JSON (Fedify 1.9 has no QuoteRequest class). The Note stays dereferenceable.
    "POST quote-request": async (ctx, body) => {
      const { object, actor } = await targetOf(ctx, body.object, body.to);
      const fep = {
        quote: { "@id": "https://w3id.org/fep/044f#quote", "@type": "@id" },
        QuoteRequest: "https://w3id.org/fep/044f#QuoteRequest",
      };
      const context = ["https://www.w3.org/ns/activitystreams", fep];
      const noteId = newId("notes");
      const note = {
        "@context": context,
        id: noteId.href,
        type: "Note",
        attributedTo: me(ctx).href,
        content: body.content ?? "<p>Quoting this.</p>",
        quote: object.id.href,
        published: new Date().toISOString(),
        url: noteId.href,
        to: ["https://www.w3.org/ns/activitystreams#Public"],
        cc: [ctx.getFollowersUri(username).href],
      };
      sent.set(noteId.href, { json: note, recipient: actor.id.href });
      const request = {
        "@context": context,
        id: newId("activities").href,
        type: "QuoteRequest",
        actor: me(ctx).href,
        object: object.id.href,
        instrument: note,
      };
      sent.set(request.id, { json: request, recipient: actor.id.href });
      const keys = await ctx.getActorKeyPairs(username);
      const inbox = href(actor.inboxId);
      const unsigned = new Request(inbox, {
        method: "POST",
        headers: { "Content-Type": "application/activity+json", Accept: "application/activity+json" },
        body: JSON.stringify(request),
      });
      const signed = await signRequest(unsigned, keyPair.privateKey, keys[0].keyId);
      const response = await realFetch(signed);
      return { id: request.id, note: noteId.href, status: response.status, json: request };
    },
    "POST update-reply": async (ctx, body) => {
      const stored = sent.get(body.note);
      if (stored?.note == null) throw new Error(`no reply ${body.note} was sent`);
      const note = stored.note.clone({
        content: body.content,
        updated: Temporal.Now.instant(),
      });
      stored.note = note;
      stored.json = await note.toJsonLd({ contextLoader: ctx.contextLoader });
      const update = new Update({
        id: newId("activities"),
        actor: me(ctx),
        object: note,
        tos: note.toIds,
        ccs: note.ccIds,
      });
      const json = await deliver(ctx, stored.actor, update, { shared: body.shared_inbox ?? true });
      return { id: update.id.href, note: body.note, json };
    },
    "POST delete-reply": async (ctx, body) => {
      const stored = sent.get(body.note);
      if (stored?.note == null) throw new Error(`no reply ${body.note} was sent`);
      stored.deleted = true;
      const del = new Delete({
        id: newId("activities"),
        actor: me(ctx),
        object: new Tombstone({ id: new URL(body.note) }),
        tos: [PUBLIC_COLLECTION],
      });
      const json = await deliver(ctx, stored.actor, del, { shared: body.shared_inbox ?? true });
      return { id: del.id.href, note: body.note, json };
    },
    "POST undo": async (ctx, body) => {
      const stored = sent.get(body.activity);
      if (stored == null) throw new Error(`no activity ${body.activity} was sent`);
      const activity = await Activity.fromJsonLd(stored.json, ctx);
      const recipient = await ctx.lookupObject(stored.recipient);
      if (recipient == null || !isActor(recipient)) {
        throw new Error(`Fedify could not resolve ${stored.recipient}`);
      }
      const undo = new Undo({ id: newId("activities"), actor: me(ctx), object: activity });
      const json = await deliver(ctx, recipient, undo, { shared: body.shared_inbox ?? true });
      return { id: undo.id.href, undone: body.activity, json };
    },
    "GET received": async () => received,
    "GET sent": async () => [...sent.entries()].map(([id, s]) => ({ id, json: s.json })),
    "GET fetches": async () => fetchLog,
    "GET logs": async () => fedifyLogs,
    "GET followers": async () => [...followers.keys()],
  };

  async function handleControl(request, pathname) {
    const name = `${request.method} ${pathname.slice("/_control/".length)}`;
    const handler = control[name];
    if (handler == null) return jsonResponse({ error: `no control endpoint ${name}` }, 404);
    let body = {};
    if (request.method === "POST") {
      const raw = await request.text();
      try {
        body = raw === "" ? {} : JSON.parse(raw);
      } catch {
        return jsonResponse({ error: "body is not JSON" }, 400);
      }
    }
    const ctx = federation.createContext(new URL(origin), { raw: null, signature: null });
    const logStart = fedifyLogs.length;
    const fetchStart = fetchLog.length;
    try {
      return jsonResponse({ ok: true, ...wrap(await handler(ctx, body)) });
    } catch (error) {
      return jsonResponse({
        ok: false,
        error: error instanceof Error ? error.message : String(error),
        fetch_problems: fetchProblems(fetchStart),
        fedify_log: fedifyLogs.slice(logStart).filter((r) => r.level !== "debug"),
      }, 502);
    }
  }

  const wrap = (value) => (Array.isArray(value) ? { items: value } : value);

  // Dereferenceable copies of everything bob sent (receivers may fetch them to check).
  function serveSent(pathname) {
    const stored = sent.get(new URL(pathname, origin).href);
    if (stored == null) return null;
    if (stored.deleted) {
      return new Response(JSON.stringify({
        "@context": "https://www.w3.org/ns/activitystreams",
        id: new URL(pathname, origin).href,
        type: "Tombstone",
      }), { status: 410, headers: { "Content-Type": "application/activity+json" } });
    }
    return new Response(JSON.stringify(stored.json), {
      headers: { "Content-Type": "application/activity+json" },
    });
  }

  const server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const url = new URL(req.url, origin);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (Array.isArray(value)) for (const v of value) headers.append(name, v);
        else if (value != null) headers.set(name, value);
      }
      // Fedify verifies `host` and the request target against this URL, so keep the Host
      // the client actually sent.
      const requestUrl = new URL(req.url, `http://${req.headers.host ?? `127.0.0.1:${port}`}`);
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const request = new Request(requestUrl, {
        method: req.method,
        headers,
        body: hasBody ? body : undefined,
      });
      if (url.pathname.startsWith("/_control/")) {
        return await writeResponse(res, await handleControl(request, url.pathname));
      }
      if (req.method === "GET" &&
          (url.pathname.startsWith("/activities/") || url.pathname.startsWith("/notes/"))) {
        const response = serveSent(url.pathname);
        if (response != null) return await writeResponse(res, response);
      }
      let raw = null;
      if (hasBody) {
        try {
          raw = JSON.parse(body.toString("utf8"));
        } catch {
          raw = null;
        }
      }
      const signature = signatureInfo(req.headers);
      const logStart = fedifyLogs.length;
      const response = await federation.fetch(request, { contextData: { raw, signature } });
      const isInbox = req.method === "POST" &&
        (url.pathname === "/inbox" || /^\/users\/[^/]+\/inbox$/.test(url.pathname));
      if (isInbox && response.status >= 400) {
        // Fedify refused the delivery (bad signature, signer is not the actor, bad JSON-LD):
        // no listener ran, so record the refusal with Fedify's reasons.
        const reason = await response.clone().text();
        record({
          type: raw?.type ?? null,
          id: raw?.id ?? null,
          actor: typeof raw?.actor === "string" ? raw.actor : raw?.actor?.id ?? null,
          inbox: url.pathname === "/inbox" ? "shared" : "personal",
          verified: false,
          status: response.status,
          reason,
          signature,
          fedify_log: fedifyLogs.slice(logStart).filter((r) => r.level !== "debug"),
          raw,
        });
      }
      return await writeResponse(res, response);
    } catch (error) {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(String(error?.stack ?? error));
    }
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  process.stdout.write(`peer listening on ${origin} as @${username}@127.0.0.1:${port}\n`);
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

// --- main -----------------------------------------------------------------------------------

const USAGE = `usage:
  node peer.mjs serve --port P [--username bob] [--log FILE] [--first-knock rfc9421|cavage]
                       [--strict-content-type]
  node peer.mjs lookup [--strict-content-type] TARGET`;

const [mode, ...rest] = process.argv.slice(2);
if (mode === "serve") {
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: "string" },
      username: { type: "string", default: "bob" },
      log: { type: "string" },
      "first-knock": { type: "string", default: "rfc9421" },
      "strict-content-type": { type: "boolean", default: false },
    },
  });
  strictContentType = values["strict-content-type"];
  if (values.port == null || !/^\d+$/.test(values.port)) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  await runServe(values);
} else if (mode === "lookup") {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { "strict-content-type": { type: "boolean", default: false } },
  });
  if (positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  strictContentType = values["strict-content-type"];
  // Bounded: a lookup that hangs is a failure, reported as one.
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, target: positionals[0], error: "timed out",
      fetches: fetchLog, fedify_log: problemLogs() }) + "\n");
    process.exit(3);
  }, 45_000);
  const code = await runLookup(positionals[0]);
  clearTimeout(timer);
  process.exit(code);
} else {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
