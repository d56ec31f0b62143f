"""The conversation export round-trips exactly, in one order, and refuses what it cannot read."""

from __future__ import annotations

import json

import pytest

from fedipress.activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    Reply,
)

POST = "https://blog.example/posts/hello/"
ANN = Person("https://a.example/users/ann", "Ann", "ann@a.example",
             "https://a.example/@ann", "https://a.example/ann.png")
BOB = Person("https://b.example/users/bob", "Bob", "bob@b.example")


def _sample() -> Conversations:
    first = Reply("https://a.example/notes/1", POST, "2026-01-02T10:00:00Z", "<p>hi</p>", ANN,
                  url="https://a.example/@ann/1")
    second = Reply("https://b.example/notes/2", first.id, "2026-01-02T09:00:00Z", "<p>yo</p>",
                   BOB, updated="2026-01-03T00:00:00Z")
    return Conversations("https://blog.example/actor.json", {
        POST: PostConversation(
            POST, replies=(first, second),
            likes=(Reaction("like", BOB, "2026-01-05T00:00:00Z"),
                   Reaction("like", ANN, "2026-01-04T00:00:00Z")),
            quotes=(Reaction("quote", ANN, "2026-01-06T00:00:00Z", "https://a.example/q/1"),),
        ),
        "https://blog.example/posts/quiet/": PostConversation("https://blog.example/posts/quiet/"),
    })


def test_round_trip_is_exact_and_sorted() -> None:
    data = _sample().to_json()
    assert list(data["objects"]) == [POST]  # an empty conversation is left out
    assert [r["id"] for r in data["objects"][POST]["replies"]] == [
        "https://b.example/notes/2", "https://a.example/notes/1"]  # by time, not arrival
    assert [r["actor"]["id"] for r in data["objects"][POST]["likes"]] == [ANN.id, BOB.id]
    again = Conversations.from_json(json.loads(json.dumps(data)))
    assert again.to_json() == data
    conv = again.for_post(POST)
    assert conv is not None and conv.quotes[0].url == "https://a.example/q/1"
    assert again.for_post("https://blog.example/posts/quiet/") is None


@pytest.mark.parametrize(("data", "message"), [
    ([], "not a JSON object"),
    ({"format": 99, "objects": {}}, "format 99"),
    ({"format": 1}, "no 'objects'"),
    ({"format": 1, "objects": {POST: {"replies": [{"id": 5}]}}}, "replies[0].id"),
    ({"format": 1, "objects": {POST: {"likes": "x"}}}, "likes is not a list"),
    ({"format": 1, "objects": {POST: {"boosts": [{"actor": "x", "published": ""}]}}},
     "boosts[0].actor"),
])
def test_bad_export_names_the_field(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Conversations.from_json(data)
