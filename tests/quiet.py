"""The `echo` that tests hand to run functions whose progress lines they do not read."""


def quiet(*args, **kwargs) -> None:
    pass
