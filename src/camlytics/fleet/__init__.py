"""Many cameras at once: the fleet file, and the fleet commands (check, collect, status, train, deploy...).

The top floor, like demo/: it may use every stage; nothing imports it.
"""
