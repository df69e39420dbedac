"""The domain of the commune kiosk: plain Python, no web framework."""
