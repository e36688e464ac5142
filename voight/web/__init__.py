"""Shared bits of the web app: login, the team scope every page goes through, base context,
presenters and the server-rendered charts."""
