"""The fediverse service side: publishing and delivering activities, the inbox service and its
handlers, followers, interactions, mentions, safe fetching, HTTP signing, keys, doctor and the
web-server configuration a blog needs to federate.

It owns every network exchange with other servers and the state kept about them (through
store/); it must not render pages or read content/ itself (it asks generator/ for a built
site), and it must keep the private key out of public/, logs and git.
"""

__all__: list[str] = []  # a grouping only: import the modules themselves
