"""The app's pages, one file per step (run by ``st.navigation`` from ``app.py``).

Streamlit executes a page file as ``__main__`` on every rerun, so each file ends with
``if __name__ == "__main__": render()``; imported as a module (tests, tooling), it only
defines its functions.
"""
