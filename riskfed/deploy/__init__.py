"""Running parties on their own hosts: services, configuration, the multi-process pilot.

``riskfed serve`` (:mod:`riskfed.deploy.service`) hosts a fintech or the coordinator
behind the network transport (:mod:`riskfed.transport.network`); the bank drives
sessions with :mod:`riskfed.deploy.bank`; :mod:`riskfed.deploy.config` reads the TOML
file that may hold addresses and credentials; :mod:`riskfed.deploy.pilot` runs every
party as its own OS process on loopback. ``docs/deployment.md`` is the operator's guide.
"""
