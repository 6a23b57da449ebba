"""How many workers a job uses, and the option that sets it."""
from .options import Option
from .parsing import parse_positive_int

#: The workers option every job has (its default comes from each job's options).
WORKERS = Option(name="workers", label="Threads", kind="int", parse=parse_positive_int,
                 flag="--threads", metavar="N",
                 help="Threads to run on (default 2).")
