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

HEALTHCHECK --interval=60s --timeout=20s --start-period=20s \
    CMD [".venv/bin/python", "-m", "bot", "check", "--offline"]

# Tokens come from the environment only (DISCORD_TOKEN, RUNCOMFY_API_TOKEN).
CMD [".venv/bin/python", "-m", "bot"]
