# RunComfy Video Bot. Build: docker build -t runcomfy-video-bot .
# Run:   docker run -e DISCORD_TOKEN -e RUNCOMFY_API_TOKEN -v bot-data:/app/data runcomfy-video-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 bot
WORKDIR /app
COPY --chown=bot:bot . /app
USER bot

# The README's install command.
RUN python3 -m venv .venv && .venv/bin/pip install -e .

# Jobs and usage live in data/bot.sqlite3: keep it on a volume (owned by the bot's user).
RUN mkdir -p data
VOLUME ["/app/data"]

# The live process's own /readyz (every shard connected, the database answering, the poller
# running); /metrics is Prometheus's, on the same port.
ENV BOT_OPS__LISTEN=0.0.0.0:9100
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s \
    CMD [".venv/bin/python", "-m", "bot", "health"]

# Tokens come from the environment only (DISCORD_TOKEN, RUNCOMFY_API_TOKEN).
CMD [".venv/bin/python", "-m", "bot"]
