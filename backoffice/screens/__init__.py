"""Screens that compose several apps (the dashboard, the navigation's counts, a position's page).

They sit beside the URL configuration, the project's composition root, and take their figures
from each app's ``queries``; the apps themselves never import each other upwards.
"""
