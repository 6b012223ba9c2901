"""The one exception type for mistakes a user can fix (bad config, missing data, bad files).

`colorize.main` prints these as a single line instead of a traceback; everything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
  """A problem with the user's input; the message names the key/file and the fix."""
