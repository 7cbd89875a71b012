"""Building blocks of the analyst app (``streamlit run app.py``).

``app.py`` is the entry point; each step of the app is a page in :mod:`riskfed.ui.pages`
that gathers the analyst's choices and calls these helpers and the public riskfed API:

* :mod:`riskfed.ui.chrome` — the page list, header, next button and sidebar.
* :mod:`riskfed.ui.boundary` — the one error boundary: a riskfed error becomes its own
  message, anything else a generic one plus a log line.
* :mod:`riskfed.ui.controls` — the settings that outlive the page they are set on.

The rest is plain Python — tables, figures, background jobs, state — unit-tested without
a browser:

* :mod:`riskfed.ui.format` — one place for number formats (percentages, points, bytes,
  seconds) and party names, so every page reads the same.
* :mod:`riskfed.ui.state` — the per-browser-session workspace kept in
  ``st.session_state`` (data, alignment, model, private key). Nothing is ever put in
  ``st.cache_data``/``st.cache_resource``: those are shared between users.
* :mod:`riskfed.ui.jobs` — long work (alignment, training) in a background thread per
  session, with progress events and cancellation, so the page never freezes.
* :mod:`riskfed.ui.data` — loading the sample data, generating a pilot, reading uploads
  and validating them into party tables; column summaries for the Data page.
* :mod:`riskfed.ui.alignment` — the Align page's overlap check.
* :mod:`riskfed.ui.training` — training settings and the run behind the Train page.
* :mod:`riskfed.ui.figures` — plotly figures (loss, ROC, KS, score distributions).
* :mod:`riskfed.ui.tables` — display tables (metrics, deciles, traffic).
* :mod:`riskfed.ui.scoring` — the applicant form and decisions at a cut-off.
* :mod:`riskfed.ui.privacy` — what each message carries; the threat model in plain words.
* :mod:`riskfed.ui.report` — the report as JSON and as readable HTML.
"""
