"""Discord's side of the line: the client and its wiring (``client``), start-up (``startup``),
cards and buttons, delivery to channels (``delivery``, ``history``, ``channel_work``), the poll
loop's clock, image sources and the one error handler. It calls the domain (every other module
of ``bot``), which never imports it; the cogs (``cogs/``) sit on top of it."""
