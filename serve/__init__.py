"""sleuth as a server: the library's tool grammar for other programs.

- :mod:`.mcp`: the Model Context Protocol server (stdio today: ``sleuth mcp``).

The HTTP API of "Past one machine" (``sleuth serve``: REST and MCP over streamable HTTP) belongs
here too. Servers sit at the top of the layers, beside the command line: they use
:class:`sleuth.Library` and :mod:`sleuth.agent`, and nothing below imports them.
"""
