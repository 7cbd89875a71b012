"""The parties as message handlers: each holds one party's private state and turns a
received message into replies. Roles never open sockets or files.

* :mod:`.bank` — the label holder and session driver (its steps in
  :mod:`.bank_alignment`, :mod:`.bank_training`, :mod:`.bank_checkpoint`);
  :mod:`.bank_scoring` — the bank in a scoring session.
* :mod:`.fintech` — a feature holder (:mod:`.fintech_checkpoint`, :mod:`.fintech_scoring`).
* :mod:`.coordinator` — the key holder.
* :mod:`.base` — dispatch, header checks and the ``@handles`` registry;
  :mod:`.state` — the roles' typed state; :mod:`.plan` — the public schedule checks.
"""
