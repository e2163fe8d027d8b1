"""Screenshot of the service's try-it page with a model's answer, for the docs.

Starts ``spacy-bert-ner serve MODEL`` on a free loopback port, opens the page in
headless Chromium (Debian's chromium and chromium-driver), types TEXT, presses
the button, waits for the entities and saves a PNG.

    python scripts/page_screenshot.py MODEL docs/images/serve-page.png
"""

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TEXT = "Angela Merkel met Emmanuel Macron at the Elysee Palace in Paris before flying back to Berlin with Lufthansa ."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("output", type=Path)
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "spacy_bert_ner", "serve", args.model, "--port", str(port), "--log-level", "warning"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if urllib.request.urlopen(url + "/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=900,720",
            "--force-device-scale-factor=1",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url + "/")
            WebDriverWait(driver, 30).until(lambda d: "·" in d.find_element(By.ID, "model").text)
            box = driver.find_element(By.ID, "text")
            box.clear()
            box.send_keys(args.text)
            driver.find_element(By.ID, "submit").click()
            WebDriverWait(driver, 30).until(ec.text_to_be_present_in_element((By.ID, "status"), "entit"))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(60)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
