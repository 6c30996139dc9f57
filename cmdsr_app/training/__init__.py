"""The Training tab and its parts: the form, the run (job, worker), its state and curves,
charts and checkpoints. Imports the app's state and views (never controllers or the window)."""
