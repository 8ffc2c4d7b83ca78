"""The scoring service (``logsieve serve``): an HTTP API and a web page over the streaming
engine."""
