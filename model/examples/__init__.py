"""Example recipes beside `model/recipe.py`, each a complete recipe of its own."""
