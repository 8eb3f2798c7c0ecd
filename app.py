"""Simpsons Studio: the dashboard's entry point (`make run`)."""

import streamlit as st

st.set_page_config(page_title="Simpsons Studio", page_icon="🍩", layout="wide")
st.title("Simpsons Studio")
st.write("From a folder of labelled images to a trained Keras classifier and back.")
