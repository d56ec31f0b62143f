// Prints the JSON-LD context documents that Fedify ships preloaded (ActivityStreams, security,
// …) as one JSON object {url: document}. The Python tests expand our documents with pyld
// against these, exactly as a strict server with no network access for contexts would.
import { getDocumentLoader } from "@fedify/fedify";

const loader = getDocumentLoader();
const urls = process.argv.slice(2);
const out = {};
for (const url of urls) {
  const remote = await loader(url);
  out[url] = remote.document;
}
process.stdout.write(JSON.stringify(out));
