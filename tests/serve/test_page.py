"""The try-it page in a real browser (headless Chromium from Debian's packages, driven by
ChromeDriver): type a sentence, press the button, and see the entities the API finds
highlighted with their labels and confidences; text that looks like HTML stays text."""

import os
import shutil

import pytest
import spacy

from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.serve import create_app

from .conftest import running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# the text the result shows, without the labels and confidences of the marks
SHOWN_TEXT = """
let shown = "";
for (const node of document.getElementById("result").childNodes) {
  shown += node.nodeType === Node.TEXT_NODE ? node.textContent : node.querySelector(".text").textContent;
}
return shown;
"""


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = (
        pytest.importorskip("selenium.webdriver") if not os.environ.get("CI") else __import__("selenium.webdriver").webdriver
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,700",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_server(serve_model):
    with running(create_app(str(serve_model))) as server:
        yield server


def _annotate(browser, url, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "status"), "entit"))
    result = browser.find_element(By.ID, "result")
    marks = [
        (m.find_element(By.CLASS_NAME, "text").text, m.get_attribute("data-label"), m.get_attribute("data-confidence"))
        for m in result.find_elements(By.CSS_SELECTOR, "mark.entity")
    ]
    return result, marks


def test_the_page_highlights_the_entities_of_a_typed_sentence(browser, page_server, serve_model):
    from selenium.webdriver.common.by import By

    text = "anna works at acme and lives in paris ."
    expected = [entity_record(s) for s in spacy.load(serve_model)(text).ents]
    assert expected, "the toy model finds entities in this sentence"
    result, marks = _annotate(browser, page_server.url, text)
    assert marks == [(e["text"], e["label"], f"{e['confidence']:.2f}") for e in expected]
    assert browser.execute_script(SHOWN_TEXT) == text
    for mark in result.find_elements(By.CSS_SELECTOR, "mark.entity"):
        assert mark.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
    model_line = browser.find_element(By.ID, "model").text
    assert "PER" in model_line or "LOC" in model_line


def test_the_page_shows_html_in_the_text_as_text(browser, page_server):
    from selenium.webdriver.common.by import By

    text = 'anna <b id="injected">bold</b> <img src=x onerror="document.title=\'pwned\'"> works at acme .'
    result, _ = _annotate(browser, page_server.url, text)
    assert not result.find_elements(By.ID, "injected") and not result.find_elements(By.TAG_NAME, "img")
    assert browser.execute_script(SHOWN_TEXT) == text
    assert browser.title != "pwned"


def test_the_page_shows_an_error_from_the_api(browser, page_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_server.url + "/")
    browser.find_element(By.ID, "text").clear()
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "status"), "empty"))
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")


def test_the_page_places_entities_after_characters_outside_the_bmp(browser, page_server, serve_model):
    text = "\U0001f600 anna works at acme and lives in paris ."
    expected = [entity_record(s) for s in spacy.load(serve_model)(text).ents]
    assert expected
    _, marks = _annotate(browser, page_server.url, text)
    assert [m[0] for m in marks] == [e["text"] for e in expected]
    assert browser.execute_script(SHOWN_TEXT) == text
