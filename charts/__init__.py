"""
Charts drawn as inline SVG on the server, shared by the customer dashboard
(portal) and the staff console: geometry in charts.bars, markup in
templates/charts/. No JavaScript and nothing loaded from elsewhere.
"""
