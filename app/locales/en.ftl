# English. Keys without variables are also sent to the browser (see i18n.rs).
site-title = jobstream
nav-jobs = Jobs
language = Language
button-language = Switch language
display-name = Display name
button-save-name = Save name
start-heading = Start a job
field-kind = Kind
kind-demo = Demo: the recipe's job
kind-echo = Echo: says your messages
kind-primes = Primes: counts primes up to a limit
kind-fail = Fail: fails at a chosen step
field-steps = Steps
field-interval_ms = Pause between steps (ms)
field-limit = Limit
field-at = Fail at step
field-message = Error message
field-messages = Messages (one per line)
field-repeat = Repeat
button-start = Start job
jobs-heading = Your jobs
jobs-empty = No jobs yet. Start one above.
col-kind = Kind
col-state = State
col-progress = Progress
col-started = Started
col-duration = Duration
button-cancel = Cancel
button-open = Open
state-queued = queued
state-running = running
state-succeeded = succeeded
state-failed = failed
state-cancelled = cancelled
state-interrupted = interrupted
job-heading = Job
job-output = Job output
job-progress = Progress
job-error = Error
job-back = All jobs
job-not-found = No such job. It may belong to another session, or it has been deleted.
not-found = Page not found.
not-yet = not yet

# Form errors.
err-range = Must be a whole number from { $min } to { $max }.
err-number = Must be a whole number.
err-too-long = At most { $max } characters.
err-empty = Required.
err-invalid = Invalid value: { $detail }
err-kind = Choose a kind of job.
err-busy = The server is busy: { $detail }

# Job messages.
demo-step = finish { $step }: ...({ $name })
echo-done = { $count ->
    [one] Said one message.
   *[other] Said { $countText } messages.
}
primes-sieving = Sieving up to { $upto }
primes-found = { $count ->
    [one] Found one prime up to { $limit }.
   *[other] Found { $countText } primes up to { $limit }.
}
fail-step = Step { $step } of { $at }: all good so far.
fail-default = Failed on purpose at step { $step }.
stopped = Stopped at step { $step }.
