"""Run the RunComfy simulator on its own: ``python -m bot.simulator --help``."""

from bot.simulator.cli import main

if __name__ == "__main__":
    main()
