"""Faust processors: one per input topic. Each validates, transforms and hands rows to the sink.

They are called *processors* so nobody confuses them with the node agents in
``agents/``. A bad message never kills one: it goes to the dead-letter topic
with the reason, and the loop goes on.
"""
