"""Drives Debian's headless Chromium for vane's board tests, one JSON
command a line on stdin, one JSON answer a line on stdout:

  {"open": URL}            load a page, wait for body[data-ready] (vane's pages;
                           "ready": JS names another sign, for other pages)
  {"widgets": true}        every widget's tag, variant, data-filled, data-value, text
  {"wait": JS, "timeout": S}  poll a JS expression until it is truthy; the ms it took
  {"js": JS}               the value of a JS expression
  {"click": CSS}           click the first element matching
  {"screenshot": PATH}     save the window as PNG
  {"quit": true}

An answer is {"ok": VALUE} or {"error": TEXT}.
"""

import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--no-first-run", "--window-size=1400,1100",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="vane-chromium-")):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


WIDGETS = """
return Array.from(document.querySelectorAll('.widget')).map(w => ({
  tag: w.dataset.widget, variant: w.dataset.variant, filled: w.dataset.filled === '1',
  value: w.dataset.value === undefined ? null : Number(w.dataset.value), text: w.innerText}));
"""


def until(d, expr, timeout):
    start = time.monotonic()
    while True:
        if d.execute_script("return (" + expr + ")"):
            return round((time.monotonic() - start) * 1000)
        if time.monotonic() - start > timeout:
            raise TimeoutError("not within %ss: %s" % (timeout, expr))
        time.sleep(0.02)


def main():
    d = browser()
    d.set_page_load_timeout(30)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                if "open" in cmd:
                    d.get(cmd["open"])
                    until(d, cmd.get("ready", "document.body.dataset.ready === '1'"), cmd.get("timeout", 20))
                    out = d.current_url
                elif "widgets" in cmd:
                    out = d.execute_script(WIDGETS)
                elif "wait" in cmd:
                    out = until(d, cmd["wait"], cmd.get("timeout", 20))
                elif "js" in cmd:
                    out = d.execute_script("return (" + cmd["js"] + ")")
                elif "click" in cmd:
                    d.find_element(By.CSS_SELECTOR, cmd["click"]).click()
                    out = True
                elif "screenshot" in cmd:
                    out = d.save_screenshot(cmd["screenshot"])
                elif "quit" in cmd:
                    print(json.dumps({"ok": True}), flush=True)
                    return
                else:
                    raise ValueError("unknown command %r" % cmd)
                print(json.dumps({"ok": out}), flush=True)
            except Exception as e:  # the test reads it and fails with it
                print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
    finally:
        d.quit()


if __name__ == "__main__":
    main()
