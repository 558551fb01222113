"""The one exception type for mistakes a user can make.

The CLI prints its message as a single line and exits with status 2, so a wrong path, key,
type or file never reaches the user as a traceback from deep inside torch.
"""


class UserError(Exception):
    """A problem with the user's input: the message names the thing and what was expected."""
