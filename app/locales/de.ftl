site-title = jobstream
nav-jobs = Jobs
language = Sprache
button-language = Sprache wechseln
display-name = Anzeigename
button-save-name = Namen speichern
start-heading = Job starten
field-kind = Art
kind-demo = Demo: der Job aus dem Rezept
kind-echo = Echo: sagt Ihre Nachrichten
kind-primes = Primzahlen: zählt Primzahlen bis zu einer Grenze
kind-fail = Fehler: scheitert bei einem gewählten Schritt
field-steps = Schritte
field-interval_ms = Pause zwischen Schritten (ms)
field-limit = Grenze
field-at = Scheitern bei Schritt
field-message = Fehlermeldung
field-messages = Nachrichten (eine pro Zeile)
field-repeat = Wiederholungen
button-start = Job starten
jobs-heading = Ihre Jobs
jobs-empty = Noch keine Jobs. Starten Sie oben einen.
col-kind = Art
col-state = Status
col-progress = Fortschritt
col-started = Gestartet
col-duration = Dauer
button-cancel = Abbrechen
button-open = Öffnen
state-queued = wartend
state-running = läuft
state-succeeded = erfolgreich
state-failed = fehlgeschlagen
state-cancelled = abgebrochen
state-interrupted = unterbrochen
job-heading = Job
job-output = Job-Ausgabe
job-progress = Fortschritt
job-error = Fehler
job-back = Alle Jobs
job-not-found = Diesen Job gibt es nicht. Er gehört vielleicht zu einer anderen Sitzung oder wurde gelöscht.
not-found = Seite nicht gefunden.
not-yet = noch nicht

err-range = Muss eine ganze Zahl von { $min } bis { $max } sein.
err-number = Muss eine ganze Zahl sein.
err-too-long = Höchstens { $max } Zeichen.
err-empty = Pflichtfeld.
err-invalid = Ungültiger Wert: { $detail }
err-kind = Wählen Sie eine Job-Art.
err-busy = Der Server ist ausgelastet: { $detail }

demo-step = fertig { $step }: ...({ $name })
echo-done = { $count ->
    [one] Eine Nachricht gesagt.
   *[other] { $countText } Nachrichten gesagt.
}
primes-sieving = Siebe bis { $upto }
primes-found = { $count ->
    [one] Eine Primzahl bis { $limit } gefunden.
   *[other] { $countText } Primzahlen bis { $limit } gefunden.
}
fail-step = Schritt { $step } von { $at }: bisher alles gut.
fail-default = Absichtlich bei Schritt { $step } gescheitert.
stopped = Bei Schritt { $step } angehalten.
