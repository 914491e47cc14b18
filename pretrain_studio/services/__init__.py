"""One service per thing a user does: corpora, labelled datasets, launching, keeping runs, trying models.

Each takes its dependencies (the workspace, the job runner's wake-up) in its constructor, takes and returns
plain Python data, and raises `errors.StudioError` for anything the user can fix. `studio.Studio` composes
them behind the method names the API, the UI and the CLI call. No Gradio here.
"""
