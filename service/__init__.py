"""The service floor: what both faces (api/, cli/) need and neither owns."""
