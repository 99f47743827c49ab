"""Child processes ftbench owns (trainers, torchrun, sweep workers): each in its own process group, signals
forwarded to the group, nothing left running when ftbench ends. See `group.py`."""
