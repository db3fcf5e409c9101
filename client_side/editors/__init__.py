"""Editors (VS Code and its forks): finding and opening them, their settings, their servers fetched ahead."""
