"""Widgets the window shows: the canvases (canvas, compare), the panels, charts, the damage
views, the layout. They observe the app's Qt-free state; never controllers or the window."""
