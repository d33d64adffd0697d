site-title = jobstream
nav-jobs = Jobs
language = Sprache
button-language = Sprache wechseln
display-name = Anzeigename
button-save-name = Namen speichern
start-heading = Job starten
field-kind = Art
kind-demo = Demo: nummerierte Schritte
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
not-yet = noch nicht
job-lost = Ältere Ereignisse werden nicht mehr aufbewahrt und nicht angezeigt: { $lost }.
live-reconnecting = Verbindung wird wiederhergestellt…
live-lost = Die Live-Verbindung ist abgebrochen; laden Sie die Seite neu, um mehr zu sehen.
live-unavailable = Live-Aktualisierungen sind in diesem Browser nicht verfügbar.
not-found-title = Nicht gefunden · jobstream
not-found-heading = Nicht gefunden
not-found-text = Hier gibt es nichts. Job-Seiten kann nur die Sitzung öffnen, die den Job gestartet hat.
not-found-back = Zurück zur Startseite
name-saved = Gespeichert. Neue Jobs nennen Sie { $name }.

err-range = Muss eine ganze Zahl von { $min } bis { $max } sein.
err-number = Muss eine ganze Zahl sein.
err-too-long = Höchstens { $max } Zeichen.
err-empty = Pflichtfeld.
err-invalid = Ungültiger Wert: { $detail }
err-kind = Wählen Sie eine Job-Art.

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

error-bad-request = { $detail }
error-unknown-kind = Unbekannte Job-Art { $kind }; bekannte Arten: { $known }
error-bad-params = Ungültige Parameter für { $kind }: { $problem }
error-bad-field = Ungültige Parameter für { $kind }: { $field }: { $problem }
problem-range = muss zwischen { $min } und { $max } liegen, war { $got }
problem-too-long = darf höchstens { $max } Zeichen haben, hat { $got }
problem-empty = darf nicht leer sein
problem-number = muss eine ganze Zahl sein
error-unknown-language = Unbekannte Sprache { $tag }; wählen Sie en, de oder fr.
error-name-empty = Geben Sie einen Namen ein.
error-name-too-long = Ein Name darf höchstens { $max } Zeichen haben; dieser hat { $got }.
error-cross-site = Anfragen von anderen Websites sind nicht erlaubt.
error-job-not-found = Diesen Job gibt es nicht.
error-no-route = Diesen Endpunkt gibt es nicht: { $path }
error-job-ended = Der Job ist bereits beendet ({ $state }).
error-not-json = Erwartet wird ein JSON-Body mit Content-Type: application/json.
error-session-streams = Diese Sitzung hat schon { $limit } offene Streams; schließen Sie einen (ein anderer Tab?) und versuchen Sie es erneut.
error-server-streams = Der Server hat { $limit } offene Streams, sein Maximum; versuchen Sie es gleich erneut.
error-no-session = Diese Anfrage hat keine Sitzung.
error-internal = Auf dem Server ist etwas schiefgegangen; versuchen Sie es erneut.
error-store = Der Job-Speicher ist nicht erreichbar; versuchen Sie es gleich erneut.
error-queue-full = Die Warteschlange ist voll ({ $capacity } Jobs warten); versuchen Sie es gleich erneut.
error-shutting-down = Der Server fährt herunter und nimmt keine neuen Jobs an.
error-draining = Der Server startet neu; versuchen Sie es gleich noch einmal.
