"""The pure core: no asyncio, sockets, threads, files, clocks or randomness.

Time is passed in as monotonic seconds (``now``); adapters live outside this package.
"""
