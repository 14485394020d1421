"""Sensors: change-data-capture, file drops and failures."""
