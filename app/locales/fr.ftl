site-title = jobstream
nav-jobs = Tâches
language = Langue
button-language = Changer de langue
display-name = Nom affiché
button-save-name = Enregistrer le nom
start-heading = Lancer une tâche
field-kind = Type
kind-demo = Démo : la tâche de la recette
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
job-not-found = Cette tâche n’existe pas. Elle appartient peut-être à une autre session, ou elle a été supprimée.
not-found = Page introuvable.
not-yet = pas encore

err-range = Doit être un nombre entier de { $min } à { $max }.
err-number = Doit être un nombre entier.
err-too-long = { $max } caractères au plus.
err-empty = Obligatoire.
err-invalid = Valeur invalide : { $detail }
err-kind = Choisissez un type de tâche.
err-busy = Le serveur est occupé : { $detail }

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
