site-title = jobstream
nav-jobs = Tâches
language = Langue
button-language = Changer de langue
display-name = Nom affiché
button-save-name = Enregistrer le nom
start-heading = Lancer une tâche
field-kind = Type
kind-demo = Démo : étapes numérotées
kind-echo = Écho : répète vos messages
kind-primes = Nombres premiers : les compte jusqu’à une limite
kind-fail = Échec : échoue à l’étape choisie
field-steps = Étapes
field-interval_ms = Pause entre les étapes (ms)
field-limit = Limite
field-at = Échouer à l’étape
field-message = Message d’erreur
field-messages = Messages (un par ligne)
field-repeat = Répétitions
button-start = Lancer la tâche
jobs-heading = Vos tâches
jobs-empty = Aucune tâche pour l’instant. Lancez-en une ci-dessus.
col-kind = Type
col-state = État
col-progress = Progression
col-started = Début
col-duration = Durée
button-cancel = Annuler
button-open = Ouvrir
state-queued = en attente
state-running = en cours
state-succeeded = réussie
state-failed = échouée
state-cancelled = annulée
state-interrupted = interrompue
job-heading = Tâche
job-output = Sortie de la tâche
job-progress = Progression
job-error = Erreur
job-back = Toutes les tâches
not-yet = pas encore
job-lost = Les événements antérieurs ne sont plus conservés et ne sont pas affichés : { $lost }.
live-reconnecting = reconnexion…
live-lost = La connexion en direct a été perdue ; rechargez la page pour voir la suite.
live-unavailable = Les mises à jour en direct ne sont pas disponibles dans ce navigateur.
not-found-title = Introuvable · jobstream
not-found-heading = Introuvable
not-found-text = Il n’y a rien ici. Seule la session qui a lancé une tâche peut ouvrir sa page.
not-found-back = Retour à la page d’accueil
name-saved = Enregistré. Les nouvelles tâches vous appelleront { $name }.

err-range = Doit être un nombre entier de { $min } à { $max }.
err-number = Doit être un nombre entier.
err-too-long = { $max } caractères au plus.
err-empty = Obligatoire.
err-invalid = Valeur invalide : { $detail }
err-kind = Choisissez un type de tâche.

demo-step = terminé { $step } : ...({ $name })
echo-done = { $count ->
    [one] { $countText } message dit.
   *[other] { $countText } messages dits.
}
primes-sieving = Crible jusqu’à { $upto }
primes-found = { $count ->
    [one] { $countText } nombre premier trouvé jusqu’à { $limit }.
   *[other] { $countText } nombres premiers trouvés jusqu’à { $limit }.
}
fail-step = Étape { $step } sur { $at } : tout va bien jusqu’ici.
fail-default = Échec volontaire à l’étape { $step }.
stopped = Arrêté à l’étape { $step }.

error-bad-request = { $detail }
error-unknown-kind = Type de tâche inconnu { $kind } ; types connus : { $known }
error-bad-params = Paramètres invalides pour { $kind } : { $problem }
error-bad-field = Paramètres invalides pour { $kind } : { $field } : { $problem }
problem-range = doit être entre { $min } et { $max }, reçu { $got }
problem-too-long = doit avoir au plus { $max } caractères, en a { $got }
problem-empty = ne doit pas être vide
problem-number = doit être un nombre entier
error-unknown-language = Langue inconnue { $tag } ; choisissez en, de ou fr.
error-name-empty = Saisissez un nom.
error-name-too-long = Un nom peut avoir au plus { $max } caractères ; celui-ci en a { $got }.
error-cross-site = Les requêtes provenant d’autres sites ne sont pas autorisées.
error-job-not-found = Cette tâche n’existe pas.
error-no-route = Ce point d’accès n’existe pas : { $path }
error-job-ended = La tâche est déjà terminée ({ $state }).
error-not-json = Un corps JSON avec Content-Type: application/json est attendu.
error-session-streams = Cette session a déjà { $limit } flux ouverts ; fermez-en un (un autre onglet ?) et réessayez.
error-server-streams = Le serveur a { $limit } flux ouverts, sa limite ; réessayez dans un instant.
error-no-session = Cette requête n’a pas de session.
error-internal = Une erreur s’est produite sur le serveur ; réessayez.
error-store = Le stockage des tâches est indisponible ; réessayez dans un instant.
error-queue-full = La file d’attente est pleine ({ $capacity } tâches en attente) ; réessayez dans un instant.
error-shutting-down = Le serveur s’arrête et n’accepte plus de nouvelles tâches.
error-draining = Le serveur redémarre ; réessayez dans un instant.
