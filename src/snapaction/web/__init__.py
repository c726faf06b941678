"""The local web app: a page and a JSON API over a trained run (see `app.create_app`)."""
