"""The static-site generator: content/ and site.yaml in, public/ out (front matter, Markdown,
themes, rendering, feeds, the build, the dev server, and `init`/`new` scaffolding).

It owns every file a build reads and writes, including the blog's static ActivityPub documents;
it must not send, receive or fetch anything over the network (that is federation/'s job).
"""

__all__: list[str] = []  # a grouping only: import the modules themselves
