"""Imported by the fork server of training children (child.py preloads it there) and nowhere else.

It makes the kernel kill the fork server as soon as the app's thread that started it ends (with the app,
since that thread never returns), and the children in turn end with the fork server (they ask for SIGTERM
when their parent dies), so an app that is killed or crashes leaves no training behind, at once.

It also names the app's main script as the fork server's own, so that multiprocessing, which imports the
main script into each child it starts unless the child's main module already is that file, does not import
app.py (Gradio and the whole UI) into every training child: the children run
`pretrain_studio.training.child._train` and need nothing of it.
"""

import os
import sys

from .supervision import die_with_parent

die_with_parent(signal_number=9)  # SIGKILL: the fork server has nothing to save
if os.environ.get("PRETRAIN_STUDIO_FORK_SERVER_MAIN"):  # child.MAIN_PATH_VARIABLE
    sys.modules["__main__"].__file__ = os.environ["PRETRAIN_STUDIO_FORK_SERVER_MAIN"]
