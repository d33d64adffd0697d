# English. Keys without variables are also sent to the browser (see i18n.rs).
site-title = jobstream
nav-jobs = Jobs
language = Language
button-language = Switch language
display-name = Display name
button-save-name = Save name
start-heading = Start a job
field-kind = Kind
kind-demo = Demo: numbered steps
kind-echo = Echo: says your messages
kind-primes = Primes: counts primes up to a limit
kind-fail = Fail: fails at a chosen step
kind-log = Log: a long build log, some lines in colour
field-lines = Lines
field-rate = Lines per second (0: as fast as possible)
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
not-yet = not yet
job-lost = { $lost } earlier events are no longer kept and are not shown.
job-created = Submitted
job-started = Started
job-finished = Finished
job-duration = Duration
job-params = Parameters
duration-ms = { $ms } ms
duration-s = { $s } s
duration-min = { $min } min { $s } s
duration-h = { $h } h { $min } min
log-load-earlier = Load earlier
log-jump = Jump to latest
log-download = Download output
log-start = This is the start of the output.
log-load-failed = The lines could not be loaded; try again.
live-reconnecting = reconnecting…
live-lost = the live connection was lost; reload to see more
live-unavailable = live updates are unavailable in this browser
not-found-title = Not found · jobstream
not-found-heading = Not found
not-found-text = There is nothing here. Job pages can only be opened by the session that started the job.
not-found-back = Back to the start page
name-saved = Saved. New jobs will call you { $name }.

# Form errors.
err-range = Must be a whole number from { $min } to { $max }.
err-number = Must be a whole number.
err-too-long = At most { $max } characters.
err-empty = Required.
err-invalid = Invalid value: { $detail }
err-kind = Choose a kind of job.

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
log-line = line { $n } of { $total }

# Errors, for the pages and the JSON API alike (see app/src/ssr/error.rs).
# The English texts are the API's: scripts may match on them, keep them as they are.
error-bad-request = { $detail }
error-unknown-kind = unknown job kind { $kind }; known kinds: { $known }
error-bad-params = invalid params for { $kind }: { $problem }
error-bad-field = invalid params for { $kind }: { $field }: { $problem }
problem-range = must be between { $min } and { $max }, got { $got }
problem-too-long = must be at most { $max } characters, got { $got }
problem-empty = must not be empty
problem-number = must be a whole number
error-unknown-language = unknown language { $tag }; choose en, de or fr
error-name-empty = Enter a name.
error-name-too-long = A name can have at most { $max } characters; this one has { $got }.
error-cross-site = cross-site requests are not allowed
error-job-not-found = no such job
error-no-route = no such endpoint: { $path }
error-job-ended = the job has already ended ({ $state })
error-not-json = expected a JSON body with Content-Type: application/json
error-session-streams = this session already has { $limit } open streams; close one (another tab?) and retry
error-server-streams = the server has { $limit } open streams, its limit; retry shortly
error-session-jobs = this session already has { $limit } jobs queued or running; wait for one to end or cancel one
error-address-jobs = your address already has { $limit } jobs queued or running; wait for one to end or cancel one
error-session-starts = this session may start { $limit } jobs a minute; try again in { $secs } s
error-no-session = no session on this request
error-internal = something went wrong on the server; try again
error-store = the job store is unavailable; try again shortly
error-queue-full = the job queue is full ({ $capacity } jobs waiting); try again shortly
error-shutting-down = the server is shutting down and takes no new jobs
error-draining = the server is restarting; try again in a moment
