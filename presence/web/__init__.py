"""Tornado handlers (thin: parse, call the presence domain, render) and the app factory."""
