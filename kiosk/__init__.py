"""kiosk: a voice assistant daemon for a Raspberry Pi-class board.

Local VAD decides when someone speaks; only that speech goes to the Realtime API;
answers are grounded with a ``search`` tool over a knowledge base.
"""

__version__ = "0.1.0"
