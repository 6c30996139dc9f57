"""The main window's controllers, one per concern: photos (opening, the queue, the shown
photo), model choice, upscale runs, batches, saving, the damage readings and the knobs. Each
owns its state and its worker jobs and reports through signals;
:class:`cmdsr_app.main_window.MainWindow` wires them. They import the views, the Training tab
and the Qt-free state and jobs, never the window."""
