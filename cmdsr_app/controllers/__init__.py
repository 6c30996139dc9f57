"""The main window's controllers, one per concern: photos (opening, the queue, the shown
photo), model choice, upscale runs, batches and saving. Each owns its state and its worker
jobs and reports through signals; :class:`cmdsr_app.main_window.MainWindow` wires them."""
