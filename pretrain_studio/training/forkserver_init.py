"""Imported by the fork server of training children (child.py preloads it there) and nowhere else.

It makes the kernel kill the fork server as soon as the app's thread that started it ends (with the app,
since that thread never returns), and the children in turn end with the fork server (they ask for SIGTERM
when their parent dies), so an app that is killed or crashes leaves no training behind, at once.
"""

from .supervision import die_with_parent

die_with_parent(signal_number=9)  # SIGKILL: the fork server has nothing to save
