// test_ui.mjs — drive www/ in Debian's headless Chromium (playwright-core,
// no browser download) against a running stack.
//
//   node regress/ui/test_ui.mjs --url http://127.0.0.1:PORT --out DIR
//
// Each case prints "ok ui:NAME" or "FAIL ui:NAME" (with the reason
// indented above it); the last line is "N passed, N failed" and the
// exit status is 1 if any case failed.  Screenshots of the main screens
// go to DIR/NN-name.png, and of a failing case to DIR/fail-NAME.png.
//
// The cases run in order in one browser tab, as one person would use
// the page: later cases rely on the account and links of earlier ones.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i,
    all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] :
    acc), []));
const BASE = (args.url || "http://127.0.0.1:5003").replace(/\/+$/, "");
const OUT = args.out || "regress/out/ui";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_MS = Number(process.env.UI_STEP_MS || 15000);
const ORIGIN = new URL(BASE).origin;

fs.mkdirSync(OUT, { recursive: true });

// ------------------------------------------------------------ harness

let passed = 0;
const failed = [];

function indent(text) {
	return String(text).replace(/\n+$/, "").split("\n").map((l) =>
	    "    " + l).join("\n");
}

async function step(name, fn) {
	try {
		await fn();
		passed++;
		console.log("ok ui:" + name);
	} catch (e) {
		failed.push(name);
		console.log(indent(e && e.stack ? e.stack : e));
		await shot("fail-" + name).catch(() => {});
		console.log("FAIL ui:" + name);
	}
}

/* Poll fn until it returns a truthy value -> that value. */
async function until(fn, what, ms = STEP_MS) {
	const end = Date.now() + ms;
	let last;
	for (;;) {
		try {
			const v = await fn();
			if (v)
				return v;
			last = v;
		} catch (e) {
			last = e;
		}
		if (Date.now() > end)
			throw new Error("timed out waiting for " + what +
			    " (last: " + (last instanceof Error ? last.message :
			    JSON.stringify(last)) + ")");
		await new Promise((r) => setTimeout(r, 50));
	}
}

async function textOf(locator) {
	return ((await locator.textContent()) || "").trim();
}

/* The locator's text matches re, visibly -> the text. */
async function seeText(locator, re, what) {
	return until(async () => {
		if (!(await locator.isVisible()))
			return false;
		const t = await textOf(locator);
		return re.test(t) ? t : false;
	}, what + " matching " + re);
}

// ------------------------------------------------------------ browser

const browser = await chromium.launch({
	executablePath: CHROMIUM,
	headless: true,
	// Without the background-networking flags Chromium keeps trying
	// Google's hosts, which this machine's closed network refuses.
	args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
	    "--no-first-run", "--disable-background-networking",
	    "--disable-component-update", "--disable-sync",
	    "--disable-dev-shm-usage"],
});
const context = await browser.newContext({
	viewport: { width: 1000, height: 760 },
	deviceScaleFactor: 1,
	locale: "en-GB",
	timezoneId: "UTC",
	colorScheme: "light",
	reducedMotion: "reduce",
});
await context.grantPermissions(["clipboard-read", "clipboard-write"],
    { origin: ORIGIN });
const page = await context.newPage();
page.setDefaultTimeout(STEP_MS);

const offOrigin = [];
const consoleProblems = [];
const pageErrors = [];
page.on("request", (r) => {
	const u = r.url();
	if (!u.startsWith(ORIGIN + "/") && !u.startsWith("data:") &&
	    !u.startsWith("blob:"))
		offOrigin.push(u);
});
page.on("console", (m) => {
	const t = m.text();
	// A 4xx the page asked for (and then showed) is logged by Chromium;
	// that is the page working, not a problem.
	if (/Failed to load resource: the server responded with a status of/.
	    test(t))
		return;
	if (m.type() === "error" || /Content Security Policy/i.test(t))
		consoleProblems.push(m.type() + ": " + t);
});
page.on("pageerror", (e) => pageErrors.push(String(e && e.stack || e)));

async function shot(name, opts) {
	await page.screenshot(Object.assign({ path: path.join(OUT, name +
	    ".png"), fullPage: true, animations: "disabled", caret: "hide" },
	    opts || {}));
}

// The API, straight from node, to check what the page claims.
async function apiCall(method, p, body, token) {
	const headers = {};
	if (token)
		headers.Authorization = token;
	const res = await fetch(BASE + p, { method, headers,
	    body: body === undefined ? undefined : JSON.stringify(body),
	    redirect: "manual" });
	const text = await res.text();
	let data = null;
	try {
		data = text ? JSON.parse(text) : null;
	} catch (e) {
		data = null;
	}
	return { status: res.status, headers: res.headers, data };
}

async function pageToken() {
	const raw = await page.evaluate(() =>
	    sessionStorage.getItem("shortd.session"));
	return raw ? JSON.parse(raw).token : null;
}

const $ = (sel) => page.locator(sel);
const login = $("#login-form");
const signup = $("#signup-form");
const shorten = $("#shorten-form");
const rows = $("#links-list > li");

const suffix = Math.random().toString(16).slice(2, 6);
const user = "ada-" + suffix;
const pw = "correct horse " + suffix;
const pw2 = "battery staple " + suffix;
const created = [];	// { id, url } in creation order

async function logInWith(u, p) {
	await login.getByLabel("Username").fill(u);
	await login.getByLabel("Password").fill(p);
	await login.getByRole("button", { name: "Log in" }).click();
}

async function loggedIn() {
	await until(async () => (await $("#app-view").isVisible()) &&
	    (await textOf($("#who-name"))) === user, "the links view");
	await until(async () => !(await $("#links-loading").isVisible()),
	    "the list to load");
}

async function logOut() {
	await page.getByRole("button", { name: "Log out" }).click();
	await until(() => login.isVisible(), "the log-in form");
}

// ------------------------------------------------------------ cases

await step("browser-root-redirects-to-ui", async () => {
	const res = await page.goto(BASE + "/");
	assert.equal(page.url(), BASE + "/ui/");
	assert.equal(res.status(), 200);
	const h = res.headers();
	assert.match(h["content-security-policy"] || "",
	    /default-src 'self'/);
	assert.match(h["content-type"] || "", /^text\/html/);
	await until(() => login.isVisible(), "the log-in form");
	assert.equal(await page.title(), "shortd — log in");
	await shot("01-login");
});

await step("signup-repeat-mismatch", async () => {
	await signup.getByLabel("Username").fill(user);
	await signup.getByLabel("Password", { exact: true }).fill(pw);
	await signup.getByLabel("Repeat the password").fill(pw + "x");
	await signup.getByRole("button", { name: "Create account" }).click();
	await seeText($("#signup-password2-error"), /passwords differ/,
	    "the repeat-password error");
	assert.equal(await signup.getByLabel("Repeat the password").
	    getAttribute("aria-invalid"), "true");
	assert.equal(await $("#app-view").isVisible(), false);
});

await step("signup", async () => {
	await signup.getByLabel("Repeat the password").fill(pw);
	await signup.getByRole("button", { name: "Create account" }).click();
	await loggedIn();
	await seeText($("#status"), /Account ada-\w+ created/, "the status");
	await seeText($("#links-empty"), /No links yet/, "the empty list");
	const st = await page.evaluate(() => ({
		session: sessionStorage.getItem("shortd.session"),
		local: localStorage.length, cookie: document.cookie }));
	assert.ok(JSON.parse(st.session).token.split(".").length === 3,
	    "a JWT in sessionStorage");
	assert.equal(st.local, 0, "nothing in localStorage");
	assert.equal(st.cookie, "", "no cookie");
	assert.deepEqual(await context.cookies(), [], "no cookie at all");
	// The focus went to the URL field, ready to type.
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "shorten-url");
	await shot("02-no-links-yet");
});

await step("signup-duplicate-username", async () => {
	await logOut();
	await seeText($("#status"), /logged out/, "the status");
	assert.equal(await page.evaluate(() =>
	    sessionStorage.getItem("shortd.session")), null);
	await signup.getByLabel("Username").fill(user);
	await signup.getByLabel("Password", { exact: true }).fill("x");
	await signup.getByLabel("Repeat the password").fill("x");
	await signup.getByRole("button", { name: "Create account" }).click();
	await seeText($("#signup-username-error"), /already taken/i,
	    "the duplicate-username error");
	assert.equal(await signup.getByLabel("Username").getAttribute(
	    "aria-invalid"), "true");
});

await step("login-wrong-password", async () => {
	await logInWith(user, pw + "-wrong");
	const t = await seeText($("#login-password-error"),
	    /wrong username or password/i, "the wrong-password error");
	assert.equal(t, "Wrong username or password.");
	assert.equal(await login.getByLabel("Password").getAttribute(
	    "aria-invalid"), "true");
	// The error is tied to the field for screen readers.
	assert.match(await login.getByLabel("Password").getAttribute(
	    "aria-describedby"), /login-password-error/);
	assert.equal(await $("#app-view").isVisible(), false);
	await shot("03-wrong-password");
});

await step("login", async () => {
	await logInWith(user, pw);
	await loggedIn();
	assert.equal(await $("#login-password-error").isVisible(), false);
});

await step("shorten-invalid-url", async () => {
	const url = shorten.getByLabel("Long URL");
	await url.fill("ftp://example.org/file.txt");
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await seeText($("#shorten-url-error"), /must start with http/i,
	    "the invalid-URL error");
	assert.equal(await url.getAttribute("aria-invalid"), "true");
	await shot("04-invalid-url");
	await url.fill("https://exa mple.org/");
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await seeText($("#shorten-url-error"), /URL/, "the second error");
	await url.fill("");
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await seeText($("#shorten-url-error"), /Enter the URL/,
	    "the empty-URL error");
	assert.equal(await rows.count(), 0, "nothing was created");
});

await step("shorten", async () => {
	const target = "https://example.org/docs/getting-started?from=shortd";
	await shorten.getByLabel("Long URL").fill(target);
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await until(() => $("#shorten-result").isVisible(), "the result");
	assert.equal(await $("#shorten-url-error").isVisible(), false);
	const link = await textOf($("#result-link"));
	const m = link.match(/^(https?:\/\/[^/]+)\/([A-Za-z0-9_-]+)$/);
	assert.ok(m, "a short link: " + link);
	assert.equal(m[1], ORIGIN);
	assert.equal(await textOf($("#result-target")), target);
	created.push({ id: m[2], url: target });
	// The redirect really leads there.
	const r = await apiCall("GET", "/" + m[2]);
	assert.equal(r.status, 301);
	assert.equal(r.headers.get("location"), target);
	// And the list shows it.
	await until(async () => (await rows.count()) === 1, "one row");
	assert.equal(await textOf(rows.first().locator("a.short")), link);
	assert.equal(await textOf(rows.first().locator("a.target-url")),
	    target);
});

await step("copy-short-link", async () => {
	const link = await textOf($("#result-link"));
	const button = $("#result-copy");
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "result-copy", "the copy button has the focus after shortening");
	await page.evaluate(() => navigator.clipboard.writeText("-"));
	await button.click();
	await seeText(button, /Copied/, "the copied state");
	assert.equal(await button.getAttribute("data-state"), "copied");
	const clip = await page.evaluate(() =>
	    navigator.clipboard.readText());
	assert.equal(clip, link);
	await seeText($("#status"), /Copied .* to the clipboard/,
	    "the announcement");
	await shot("05-shortened-and-copied");
});

await step("list-paging", async () => {
	const token = await pageToken();
	for (let i = 1; i <= 11; i++) {
		const url = "https://example.org/articles/" + (2000 + i) +
		    "/notes-on-" + ["caching", "fastcgi", "argon2", "jwt",
		    "mariadb", "nginx", "epoll", "prefork", "utf-8",
		    "base62", "paging"][i - 1];
		const r = await apiCall("POST", "/", { value: url }, token);
		assert.equal(r.status, 201);
		created.push({ id: r.data.id, url });
	}
	await page.reload();
	await loggedIn();
	// Newest first, ten to a page.
	const want = created.slice().reverse();
	await until(async () => (await rows.count()) === 10, "10 rows");
	for (let i = 0; i < 10; i++)
		assert.equal(await textOf(rows.nth(i).locator(
		    "a.target-url")), want[i].url, "row " + i);
	assert.match(await textOf($("#page-info")), /Page 1: links 1–10/);
	assert.equal(await $("#page-prev").isDisabled(), true);
	await shot("06-links");
	await $("#page-next").click();
	await until(async () => (await rows.count()) === 2, "2 rows");
	assert.equal(await textOf(rows.nth(0).locator("a.target-url")),
	    want[10].url);
	assert.equal(await textOf(rows.nth(1).locator("a.target-url")),
	    want[11].url);
	assert.match(await textOf($("#page-info")), /Page 2: links 11–12/);
	assert.equal(await $("#page-next").isDisabled(), true);
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "links-title", "the focus moves to the list heading");
	await $("#page-prev").click();
	await until(async () => (await rows.count()) === 10, "10 rows again");
	assert.equal(await textOf(rows.nth(0).locator("a.target-url")),
	    want[0].url);
	await $("#page-size").selectOption("25");
	await until(async () => (await rows.count()) === 12, "12 rows");
	assert.equal(await $("#page-next").isDisabled(), true);
	await $("#page-size").selectOption("10");
	await until(async () => (await rows.count()) === 10, "10 rows, last");
});

await step("copy-from-list", async () => {
	const row = rows.nth(2);
	const link = await textOf(row.locator("a.short"));
	await row.getByRole("button", { name: "Copy " + link }).click();
	await seeText(row.locator("button.copy"), /Copied/, "copied");
	assert.equal(await page.evaluate(() =>
	    navigator.clipboard.readText()), link);
});

await step("edit-inline", async () => {
	const row = rows.nth(1);
	const link = await textOf(row.locator("a.short"));
	const id = link.split("/").pop();
	await row.getByRole("button", { name: "Edit " + link }).click();
	const input = row.getByLabel("New target URL for " + link);
	await until(() => input.isVisible(), "the edit field");
	assert.equal(await input.inputValue(),
	    await textOf(row.locator("a.target-url")));
	assert.equal(await input.evaluate((e) => e === document.activeElement),
	    true, "the edit field has the focus");
	// A bad URL: the server's words next to the field.
	await input.fill("javascript:alert(1)");
	await row.getByRole("button", { name: "Save" }).click();
	await seeText(row.locator(".edit-error"), /must start with http/i,
	    "the edit error");
	assert.equal(await input.getAttribute("aria-invalid"), "true");
	await shot("07-edit-error", { fullPage: false });
	// Escape cancels, nothing changed.
	await input.press("Escape");
	await until(async () => !(await input.isVisible()), "edit closed");
	let r = await apiCall("GET", "/" + id);
	const before = created.find((c) => c.id === id).url;
	assert.equal(r.headers.get("location"), before);
	// A good one.
	await row.getByRole("button", { name: "Edit " + link }).click();
	const next = "https://example.org/moved/" + suffix + "#here";
	await input.fill(next);
	await input.press("Enter");
	await until(async () => (await textOf(row.locator("a.target-url"))) ===
	    next && !(await input.isVisible()), "the new target in the row");
	await seeText($("#status"), /now leads to/, "the announcement");
	r = await apiCall("GET", "/" + id);
	assert.equal(r.status, 301);
	assert.equal(r.headers.get("location"), next);
	created.find((c) => c.id === id).url = next;
	await page.reload();
	await loggedIn();
	await until(async () => (await textOf(rows.nth(1).locator(
	    "a.target-url"))) === next, "the edit to survive a reload");
});

await step("delete-with-confirmation", async () => {
	const row = rows.nth(0);
	const link = await textOf(row.locator("a.short"));
	const id = link.split("/").pop();
	const dialog = $("#delete-dialog");
	await row.getByRole("button", { name: "Delete " + link }).click();
	await until(() => dialog.isVisible(), "the confirmation");
	assert.equal(await textOf($("#delete-short")), link);
	assert.equal(await page.evaluate(() =>
	    document.activeElement.textContent), "Cancel",
	    "Cancel has the focus");
	await shot("08-delete-confirm", { fullPage: false });
	// Cancel keeps it.
	await dialog.getByRole("button", { name: "Cancel" }).click();
	await until(async () => !(await dialog.isVisible()), "closed");
	assert.equal((await apiCall("GET", "/" + id)).status, 301);
	assert.equal(await textOf(rows.nth(0).locator("a.short")), link);
	// Escape keeps it too.
	await row.getByRole("button", { name: "Delete " + link }).click();
	await until(() => dialog.isVisible(), "the confirmation again");
	await page.keyboard.press("Escape");
	await until(async () => !(await dialog.isVisible()), "closed by Esc");
	assert.equal((await apiCall("GET", "/" + id)).status, 301);
	// Confirmed: gone, from the page and from the server.
	await row.getByRole("button", { name: "Delete " + link }).click();
	await until(() => dialog.isVisible(), "the confirmation, third");
	await dialog.getByRole("button", { name: "Delete" }).click();
	await until(async () => !(await dialog.isVisible()), "closed, deleted");
	await seeText($("#status"), /was deleted/, "the announcement");
	await until(async () => (await textOf(rows.nth(0).locator(
	    "a.short"))) !== link, "the row to go");
	assert.equal((await apiCall("GET", "/" + id)).status, 404);
	created.splice(created.findIndex((c) => c.id === id), 1);
	// The page refilled: still ten (eleven links left).
	await until(async () => (await rows.count()) === 10, "10 rows");
});

await step("keyboard-only", async () => {
	// From the top of the page, Tab to the URL field, type, Enter.
	await page.reload();
	await loggedIn();
	let n = 0;
	while (n++ < 12 && (await page.evaluate(() =>
	    document.activeElement.id)) !== "shorten-url")
		await page.keyboard.press("Tab");
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "shorten-url", "Tab reaches the URL field");
	const target = "https://example.org/keyboard/" + suffix;
	await page.keyboard.type(target);
	await page.keyboard.press("Enter");
	await until(async () => (await textOf($("#result-target"))) ===
	    target, "the keyboard-made link");
	const link = await textOf($("#result-link"));
	created.push({ id: link.split("/").pop(), url: target });
	// The focus sits on Copy: Enter copies.
	await page.keyboard.press("Enter");
	await seeText($("#result-copy"), /Copied/, "copied by keyboard");
	assert.equal(await page.evaluate(() =>
	    navigator.clipboard.readText()), link);
	// Tab on to the first row's delete button, open, Escape, back.
	const del = rows.nth(0).locator(".delete-open");
	await until(async () => (await textOf(rows.nth(0).locator(
	    "a.target-url"))) === target, "the new row");
	n = 0;
	while (n++ < 30 && !(await del.evaluate((e) =>
	    e === document.activeElement)))
		await page.keyboard.press("Tab");
	assert.ok(await del.evaluate((e) => e === document.activeElement),
	    "Tab reaches a row's Delete");
	// The focus is visible (an outline is drawn).
	const outline = await del.evaluate((e) =>
	    getComputedStyle(e).outlineStyle);
	assert.notEqual(outline, "none", "a visible focus ring");
	await page.keyboard.press("Enter");
	await until(() => $("#delete-dialog").isVisible(), "the dialog");
	await page.keyboard.press("Escape");
	await until(async () => !(await $("#delete-dialog").isVisible()),
	    "the dialog closed");
	assert.ok(await del.evaluate((e) => e === document.activeElement),
	    "the focus returns to Delete");
});

await step("link-features-shown-only-where-supported", async () => {
	const token = await pageToken();
	const first = created[created.length - 1];
	// What the server says about its own features.
	const stats = await apiCall("GET", "/" + first.id + "/stats",
	    undefined, token);
	const qr = await apiCall("GET", "/" + first.id + "/qr");
	const alias = "ali" + suffix;
	const probe = await apiCall("POST", "/", { value:
	    "https://example.org/alias-probe", id: alias + "p" }, token);
	assert.equal(probe.status, 201);
	await apiCall("DELETE", "/" + probe.data.id, undefined, token);
	const hasAlias = probe.data.id === alias + "p";
	const row = rows.nth(0);
	await page.reload();
	await loggedIn();
	if (stats.status === 200) {
		await seeText(row.locator(".meta"), /visit/, "visit counts");
	} else {
		assert.equal(stats.status, 404);
		// Give the page's own probe time to answer, then: nothing.
		await page.waitForTimeout(500);
		assert.equal(await $(".link .meta:visible").count(), 0);
		assert.equal(await $("#expiry-fields").isVisible(), false);
	}
	const qrOk = qr.status === 200 &&
	    /^image\//.test(qr.headers.get("content-type") || "");
	if (qrOk) {
		const b = row.locator(".qr-open");
		await until(() => b.isVisible(), "the QR button");
		await b.click();
		const img = row.locator("img.qr");
		await until(async () => (await img.isVisible()) &&
		    (await img.evaluate((e) => e.complete &&
		    e.naturalWidth > 0)), "the QR image");
	} else {
		assert.equal(await $(".qr-open:visible").count(), 0);
	}
	// The alias field: used if the server keeps aliases, else an
	// honest message next to it.
	await $("#shorten-options summary").click();
	const aliasInput = shorten.getByLabel(/Custom alias/);
	await aliasInput.fill(alias);
	const target = "https://example.org/with-alias/" + suffix;
	await shorten.getByLabel("Long URL").fill(target);
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await until(async () => (await textOf($("#result-target"))) ===
	    target, "the result");
	const link = await textOf($("#result-link"));
	created.push({ id: link.split("/").pop(), url: target });
	if (hasAlias) {
		assert.equal(link, ORIGIN + "/" + alias);
		assert.equal(await $("#shorten-alias-error").isVisible(), false);
	} else {
		await seeText($("#shorten-alias-error"),
		    /does not support custom aliases/, "the alias message");
		assert.equal(await aliasInput.isDisabled(), true);
	}
	await shot("09-more-options");
	await $("#shorten-options summary").click();
});

await step("visits-chart", async () => {
	const token = await pageToken();
	const first = created[created.length - 1];
	const stats = await apiCall("GET", "/" + first.id + "/stats",
	    undefined, token);
	if (stats.status !== 200 || !Array.isArray(stats.data.by_day)) {
		// No visit analytics on this server: no button.
		assert.equal(await $(".visits-open:visible").count(), 0);
		return;
	}
	// Visits from a phone and a desktop, with referers, and a crawler.
	const visit = (ua, ref) => fetch(BASE + "/" + first.id, {
	    redirect: "manual", headers: Object.assign({ "User-Agent": ua },
	    ref ? { Referer: ref } : {}) });
	const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS " +
	    "X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 " +
	    "Mobile/15E148 Safari/604.1";
	const win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) " +
	    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 " +
	    "Safari/537.36";
	for (const [ua, ref] of [[iphone, "https://t.co/x"], [iphone,
	    "https://t.co/y"], [win, "https://news.example/a"], [win, null],
	    ["Twitterbot/1.0", null]])
		assert.equal((await visit(ua, ref)).status, 301);
	const before = stats.data.by_day.reduce((a, d) => a + d.visits, 0);
	await until(async () => {
		const s = await apiCall("GET", "/" + first.id + "/stats",
		    undefined, token);
		return s.data.by_day.reduce((a, d) => a + d.visits, 0) >=
		    before + 4 && s.data.bots >= 1;
	}, "the visits to be recorded");
	await page.reload();
	await loggedIn();
	const row = $("#links-list > li[data-id=\"" + first.id + "\"]");
	const b = row.locator(".visits-open");
	await until(() => b.isVisible(), "the Visits button");
	await b.click();
	const panel = row.locator("section.visits");
	await until(() => panel.isVisible(), "the visits panel");
	assert.equal(await b.getAttribute("aria-expanded"), "true");
	// One bar per day of the period, the bots stacked on today's.
	const svg = panel.locator(".chart svg");
	assert.equal(await svg.locator("g.day").count(), 31);
	assert.ok((await svg.locator("rect.bar-bot").count()) >= 1);
	assert.match(await svg.getAttribute("aria-label"),
	    /^\d+ visits and \d+ bot visits over 31 days/);
	const today = new Date().toISOString().slice(0, 10);
	assert.match(await textOf(svg.locator("g.day").last()
	    .locator("title")), new RegExp("^" + today + ": \\d+ visits?, " +
	    "\\d+ bots?$"));
	// Today has visits: its bar stands up.
	const h = await svg.locator("g.day").last().locator("rect.bar")
	    .getAttribute("height");
	assert.ok(Number(h) > 1, "today's bar has a height: " + h);
	await seeText(panel.locator(".top-referers"), /t\.co\s*2/,
	    "t.co among the referers");
	await seeText(panel.locator(".top-referers"), /news\.example/,
	    "news.example among the referers");
	await seeText(panel.locator(".top-browsers"), /Safari\s*\d+/,
	    "Safari among the browsers");
	await seeText(panel.locator(".top-countries"), /unknown/,
	    "no country without geoip_db");
	await seeText(panel.locator(".visits-total"), /by bots \(not counted\)/,
	    "the bots' count");
	// Drawn from the page's own script: no image, no other origin.
	assert.equal(await panel.locator("img, iframe, object").count(), 0);
	const light = await svg.locator("rect.bar").first().evaluate((e) =>
	    getComputedStyle(e).fill);
	await shot("14-visits");
	await page.emulateMedia({ colorScheme: "dark" });
	const dark = await svg.locator("rect.bar").first().evaluate((e) =>
	    getComputedStyle(e).fill);
	assert.notEqual(light, dark, "the bars follow the colour scheme");
	await shot("15-visits-dark", { fullPage: false });
	await page.emulateMedia({ colorScheme: "light" });
	await b.click();
	await until(async () => !(await panel.isVisible()), "the panel to close");
	assert.equal(await b.getAttribute("aria-expanded"), "false");
});

await step("change-password", async () => {
	const dialog = $("#password-dialog");
	await page.getByRole("button", { name: "Change password" }).click();
	await until(() => dialog.isVisible(), "the dialog");
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "password-current");
	await dialog.getByLabel("Current password").fill(pw + "-wrong");
	await dialog.getByLabel("New password", { exact: true }).fill(pw2);
	await dialog.getByLabel("Repeat the new password").fill(pw2);
	await dialog.getByRole("button", { name: "Change password" }).click();
	await seeText($("#password-current-error"),
	    /wrong username or password/i, "the wrong-password error");
	await shot("10-change-password-error", { fullPage: false });
	await dialog.getByLabel("Current password").fill(pw);
	await dialog.getByLabel("Repeat the new password").fill(pw2 + "x");
	await dialog.getByRole("button", { name: "Change password" }).click();
	await seeText($("#password-new2-error"), /differ/, "the mismatch");
	await dialog.getByLabel("Repeat the new password").fill(pw2);
	await dialog.getByRole("button", { name: "Change password" }).click();
	await until(async () => !(await dialog.isVisible()), "closed");
	await seeText($("#status"), /password was changed/, "the status");
	let r = await apiCall("POST", "/users/login", { username: user,
	    password: pw });
	assert.equal(r.status, 403, "the old password is refused");
	r = await apiCall("POST", "/users/login", { username: user,
	    password: pw2 });
	assert.equal(r.status, 200, "the new password works");
});

await step("logout-and-login-with-new-password", async () => {
	await logOut();
	assert.equal(await page.evaluate(() =>
	    sessionStorage.getItem("shortd.session")), null);
	assert.equal(await rows.count(), 0, "no links left on the page");
	await logInWith(user, pw);
	await seeText($("#login-password-error"), /wrong username/i,
	    "the old password refused");
	await logInWith(user, pw2);
	await loggedIn();
	await until(async () => (await rows.count()) === 10, "the links");
});

await step("expired-session", async () => {
	// A token the server no longer takes (here: tampered) ends the
	// session with words, not a blank page.
	await page.evaluate(() => {
		const s = JSON.parse(sessionStorage.getItem("shortd.session"));
		s.token = s.token.slice(0, -4) + "AAAA";
		sessionStorage.setItem("shortd.session", JSON.stringify(s));
	});
	await page.reload();
	await seeText($("#login-error"), /session has ended/,
	    "the session-ended message");
	assert.equal(await login.getByLabel("Username").inputValue(), user);
	assert.equal(await page.evaluate(() =>
	    sessionStorage.getItem("shortd.session")), null);
	await logInWith(user, pw2);
	await loggedIn();
});

// ------------------------------------------------------------ issue 16

const rowOf = (id) => $("#links-list > li[data-id=\"" + id + "\"]");
const chipsOf = async (loc) => (await loc.locator(
    ".link-tags button.chip").allTextContents()).sort();
const shownIds = () => rows.evaluateAll((els) => els.map((e) =>
    e.dataset.id));
const tagged = {};	// name -> id of the links made below

await step("titles-and-tags-when-shortening", async () => {
	// The fields appear once the page knows the server has them.
	const title = shorten.getByLabel(/^Title/);
	const tags = shorten.getByLabel(/^Tags/);
	await until(() => title.isVisible(), "the title field");
	const target = "https://example.org/guides/tagging-" + suffix;
	await shorten.getByLabel("Long URL").fill(target);
	await title.fill("Tagging guide " + suffix);
	// A tag the server refuses: its words, next to the tags.
	await tags.fill("docs über");
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await seeText($("#new-tags-error"), /^Invalid tags: each tag is/,
	    "the server's tag error");
	assert.equal(await tags.getAttribute("aria-invalid"), "true");
	assert.equal(await $("#shorten-result").isVisible(), false);
	await tags.fill("Docs, team-a #howto");
	await shorten.getByRole("button", { name: "Shorten" }).click();
	await until(async () => (await textOf($("#result-target"))) ===
	    target, "the result");
	const id = (await textOf($("#result-link"))).split("/").pop();
	created.push({ id, url: target });
	tagged.guide = id;
	const row = rowOf(id);
	await seeText(row.locator(".link-title"), new RegExp("^Tagging " +
	    "guide " + suffix + "$"), "the title in the list");
	assert.deepEqual(await chipsOf(row), ["docs", "howto", "team-a"]);
	// What the server stored.
	const st = await apiCall("GET", "/" + id + "/stats", undefined,
	    await pageToken());
	assert.equal(st.data.title, "Tagging guide " + suffix);
	assert.deepEqual(st.data.tags.slice().sort(), ["docs", "howto",
	    "team-a"]);
	// The form is empty again.
	assert.equal(await title.inputValue(), "");
	assert.equal(await tags.inputValue(), "");
	await shot("16-titles-and-tags");
});

await step("titles-and-tags-when-editing", async () => {
	// A link of the first page that has neither yet.
	const firstId = await rows.nth(1).getAttribute("data-id");
	const first = created.find((c) => c.id === firstId);
	assert.ok(first, "the second row is one of ours");
	const row = rowOf(first.id);
	const link = await textOf(row.locator("a.short"));
	await row.getByRole("button", { name: "Edit " + link }).click();
	const title = row.getByRole("textbox", { name: "Title of " +
	    link });
	const tags = row.getByRole("textbox", { name: "Tags of " +
	    link });
	await until(() => title.isVisible(), "the title field of the row");
	assert.equal(await title.inputValue(), "");
	await title.fill("Getting started");
	await tags.fill("ÜBER");
	await row.getByRole("button", { name: "Save" }).click();
	await seeText(row.locator(".edit-tags-error"), /^Invalid tags/,
	    "the server's tag error in the row");
	assert.equal(await tags.getAttribute("aria-invalid"), "true");
	assert.equal(await row.locator(".edit-error").isVisible(), false);
	await tags.fill("docs, release");
	await tags.press("Enter");
	await until(async () => !(await title.isVisible()), "the edit closed");
	await seeText($("#status"), /was saved/, "the announcement");
	await seeText(row.locator(".link-title"), /^Getting started$/,
	    "the new title");
	assert.deepEqual(await chipsOf(row), ["docs", "release"]);
	// The target did not change; the server has the title and tags.
	assert.equal(await textOf(row.locator("a.target-url")), first.url);
	const st = await apiCall("GET", "/" + first.id + "/stats",
	    undefined, await pageToken());
	assert.equal(st.data.title, "Getting started");
	assert.deepEqual(st.data.tags.slice().sort(), ["docs", "release"]);
	assert.equal(st.data.value, first.url);
	tagged.started = first.id;
	// Reopened, the form shows them.
	await row.getByRole("button", { name: "Edit " + link }).click();
	assert.equal(await title.inputValue(), "Getting started");
	assert.equal(await tags.inputValue(), "docs, release");
	await title.press("Escape");
});

await step("tag-filters", async () => {
	const token = await pageToken();
	for (const [name, tags] of [["teamb", ["docs", "team-b"]],
	    ["teama", ["team-a"]]]) {
		const url = "https://example.org/" + name + "/" + suffix;
		const r = await apiCall("POST", "/", { value: url, tags },
		    token);
		assert.equal(r.status, 201);
		created.push({ id: r.data.id, url });
		tagged[name] = r.data.id;
	}
	await page.reload();
	await loggedIn();
	// A tag under a link: only the links with it.
	const chip = rowOf(tagged.guide).locator(".link-tags button.chip",
	    { hasText: /^docs$/ });
	await chip.click();
	const same = (want) => async () => JSON.stringify((await shownIds()).
	    slice().sort()) === JSON.stringify(want.slice().sort());
	await until(same([tagged.guide, tagged.started, tagged.teamb]),
	    "the links tagged docs");
	assert.equal(await chip.getAttribute("aria-pressed"), "true");
	assert.deepEqual(await $("#tag-filters button").allTextContents(),
	    ["docs"]);
	// A second tag: the links with both.
	await rowOf(tagged.guide).locator(".link-tags button.chip",
	    { hasText: /^team-a$/ }).click();
	await until(same([tagged.guide]), "the links tagged docs and team-a");
	assert.deepEqual(await $("#tag-filters button").allTextContents(),
	    ["docs", "team-a"]);
	await shot("17-tag-filters");
	// The page says so to the API, as repeated ?tag=.
	const api = await apiCall("GET", "/?tag=docs&tag=team-a", undefined,
	    token);
	assert.deepEqual(api.data.items.map((i) => i.id), [tagged.guide]);
	// Removing a chip: docs goes, team-a stays.
	await page.getByRole("button", { name: "Remove the filter by tag " +
	    "docs" }).click();
	await until(same([tagged.guide, tagged.teama]),
	    "the links tagged team-a");
	// A tag nobody has: an empty list, said in words.
	await $("#search-q").fill("#nosuch-" + suffix);
	await $("#search-q").press("Enter");
	await seeText($("#links-empty"), new RegExp("No links have all the " +
	    "tags team-a, nosuch-" + suffix), "the friendly empty list");
	assert.equal(await rows.count(), 0);
	assert.equal(await $("#links-error").isVisible(), false);
	// All links again.
	await page.getByRole("button", { name: "Show all links" }).click();
	await until(async () => (await rows.count()) === 10, "10 rows");
	assert.equal(await $("#filters").isVisible(), false);
});

await step("search-and-sort", async () => {
	const token = await pageToken();
	const box = $("#search-q");
	// Too short for the index: the API's 400, in words, at the box.
	await box.fill("ab");
	await box.press("Enter");
	await seeText($("#search-q-error"), /3 or more letters or digits/,
	    "the search error");
	assert.equal(await box.getAttribute("aria-invalid"), "true");
	assert.equal(await $("#links-empty").isVisible(), false);
	await shot("18-search-error", { fullPage: false });
	// A word of the title (and of the URL).
	await box.fill("guide");
	await page.getByRole("button", { name: "Search", exact: true }).click();
	await until(async () => JSON.stringify(await shownIds()) ===
	    JSON.stringify([tagged.guide]), "the search result");
	assert.equal(await $("#search-q-error").isVisible(), false);
	// A word of a URL only, with a tag: both apply.
	await box.fill("teamb #docs");
	await box.press("Enter");
	await until(async () => JSON.stringify(await shownIds()) ===
	    JSON.stringify([tagged.teamb]), "text and tag");
	assert.equal(await box.inputValue(), "teamb");
	await page.getByRole("button", { name: "Show all links" }).click();
	await until(async () => (await rows.count()) === 10, "all again");
	// Most visited: the guide, followed 6 times, comes first.
	for (let i = 0; i < 6; i++)
		assert.equal((await fetch(BASE + "/" + tagged.guide,
		    { redirect: "manual", headers: { "User-Agent": "Mozilla/" +
		    "5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 " +
		    "Firefox/128.0" } })).status, 301);
	await until(async () => (await apiCall("GET",
	    "/?sort=-visits&limit=1", undefined, token)).data.items[0].id ===
	    tagged.guide, "the visits to be counted");
	await $("#sort").selectOption({ label: "Most visited" });
	await until(async () => (await shownIds())[0] === tagged.guide,
	    "the most visited first");
	let want = (await apiCall("GET", "/?sort=-visits&limit=10", undefined,
	    token)).data.items.map((i) => i.id);
	assert.deepEqual(await shownIds(), want);
	assert.equal(await textOf($("#page-next")), "Next →");
	// Oldest first, paged like the default order.
	await $("#sort").selectOption({ label: "Oldest first" });
	want = (await apiCall("GET", "/?sort=created&limit=10", undefined,
	    token)).data.items.map((i) => i.id);
	await until(async () => JSON.stringify(await shownIds()) ===
	    JSON.stringify(want), "the oldest first");
	assert.equal(await textOf($("#page-next")), "Newer →");
	await $("#page-next").click();
	const next = (await apiCall("GET", "/?sort=created&limit=20",
	    undefined, token)).data.items.map((i) => i.id).slice(10);
	await until(async () => JSON.stringify(await shownIds()) ===
	    JSON.stringify(next), "the second page, oldest first");
	await $("#sort").selectOption({ label: "Newest first" });
	await until(async () => (await textOf($("#page-info"))).startsWith(
	    "Page 1:"), "back to page 1");
	assert.equal(await textOf($("#page-next")), "Older →");
});

await step("api-keys", async () => {
	const token = await pageToken();
	const keys = $("#keys");
	const form = $("#key-form");
	await until(() => keys.isVisible(), "the API keys section");
	await seeText($("#keys-empty"), /No keys yet/, "no keys");
	// No name: said next to the field, nothing sent.
	await form.getByRole("button", { name: "Create key" }).click();
	await seeText($("#key-name-error"), /Name the key/, "the name error");
	// A day in the past: the server's words next to the date.
	const name = "ci bot " + suffix;
	await form.getByLabel("Name").fill(name);
	await form.getByLabel(/^Expires/).fill("2001-02-03");
	await form.getByRole("button", { name: "Create key" }).click();
	await seeText($("#key-expires-error"), /^Invalid expires_at/,
	    "the server's expiry error");
	assert.equal(await form.getByLabel(/^Expires/).getAttribute(
	    "aria-invalid"), "true");
	assert.equal((await apiCall("GET", "/users/keys", undefined, token)).
	    data.items.length, 0, "no key was made");
	// A year ahead.
	const day = new Date(Date.now() + 365 * 86400e3).toISOString().
	    slice(0, 10);
	await form.getByLabel(/^Expires/).fill(day);
	await form.getByRole("button", { name: "Create key" }).click();
	await until(() => $("#key-new").isVisible(), "the new key");
	await seeText($("#key-new-warning"), /you will not see it again/,
	    "the warning");
	const key = await $("#key-new-value").inputValue();
	assert.match(key, /^sk_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/);
	assert.equal(await page.evaluate(() => document.activeElement.id),
	    "key-new-copy", "the focus is on Copy");
	await page.evaluate(() => navigator.clipboard.writeText("-"));
	await $("#key-new-copy").click();
	await seeText($("#key-new-copy"), /Copied/, "the copied state");
	const clip = await page.evaluate(() =>
	    navigator.clipboard.readText());
	assert.equal(clip, key);
	const status = await seeText($("#status"),
	    /Copied the key to the clipboard/, "the announcement");
	assert.ok(!status.includes(key), "the status does not repeat it");
	await shot("19-key-created");
	// It works from a program, as X-Api-Key.
	const withKey = (k) => fetch(BASE + "/?limit=1",
	    { headers: { "X-Api-Key": k } });
	assert.equal((await withKey(clip)).status, 200);
	// Listed, without its secret.
	const krow = $("#keys-list > li").filter({ hasText: name });
	await until(async () => (await krow.count()) === 1, "the key listed");
	assert.match(await textOf(krow.locator(".key-meta")),
	    /^created .+ · expires .+ · (never used|last used .+)$/);
	assert.ok(!(await textOf($("#keys-list"))).includes(key.slice(16)));
	// Used: the list says when (written in batches).
	await until(async () => typeof (await apiCall("GET", "/users/keys",
	    undefined, token)).data.items[0].last_used_at === "string",
	    "last_used_at");
	await page.reload();
	await loggedIn();
	await seeText(krow.locator(".key-meta"), / · last used .+$/,
	    "the last use");
	// After a reload the key is nowhere on the page.
	assert.equal(await $("#key-new").isVisible(), false);
	assert.ok(!(await page.content()).includes(key.slice(16)));
	// Revoke: Cancel keeps it.
	const dialog = $("#revoke-dialog");
	const revoke = krow.getByRole("button", { name: "Revoke the key " +
	    name });
	await revoke.click();
	await until(() => dialog.isVisible(), "the confirmation");
	assert.equal(await textOf($("#revoke-name")), name);
	assert.equal(await page.evaluate(() =>
	    document.activeElement.textContent), "Cancel");
	await shot("20-revoke-confirm", { fullPage: false });
	await dialog.getByRole("button", { name: "Cancel" }).click();
	await until(async () => !(await dialog.isVisible()), "closed");
	assert.equal((await withKey(key)).status, 200, "kept");
	// Confirmed: refused from the next request on.
	await revoke.click();
	await until(() => dialog.isVisible(), "the confirmation again");
	await dialog.getByRole("button", { name: "Revoke" }).click();
	await until(async () => !(await dialog.isVisible()), "revoked");
	await seeText($("#status"), /was revoked/, "the announcement");
	const refused = await withKey(key);
	assert.equal(refused.status, 403);
	assert.equal((await refused.json()).detail, "forbidden");
	await seeText($("#keys-empty"), /No keys yet/, "the empty list");
	// Done: a shown key leaves the page.
	await form.getByLabel("Name").fill("second " + suffix);
	await form.getByRole("button", { name: "Create key" }).click();
	await until(() => $("#key-new").isVisible(), "a second key");
	await $("#key-new-done").click();
	assert.equal(await $("#key-new").isVisible(), false);
	assert.equal(await $("#key-new-value").inputValue(), "");
});

await step("management-hidden-on-an-older-server", async () => {
	// An older shortd, imitated: no /users/keys, no DELETE /users, no
	// ?sort=, no titles or tags in its answers.
	const json = (route, status, data, headers) => route.fulfill({
	    status, headers: Object.assign({ "Content-Type":
	    "application/json" }, headers || {}), body: JSON.stringify(data) });
	const strip = async (route) => {
		const res = await route.fetch();
		const data = await res.json();
		for (const o of [data].concat(data.items || [])) {
			delete o.title;
			delete o.tags;
		}
		await json(route, res.status(), data);
	};
	const old = async (route) => {
		const req = route.request();
		const u = new URL(req.url());
		if (u.pathname === "/users/keys")
			return json(route, 404, { detail: "not found",
			    message: "no such resource" });
		if (u.pathname === "/users" && req.method() === "GET")
			return json(route, 405, { detail: "method not allowed",
			    message: "method not allowed" }, { Allow:
			    "POST, PUT" });
		if (u.pathname === "/" && req.method() === "GET" &&
		    u.searchParams.has("sort"))
			return json(route, 200, { items: [], next: null });
		if (req.method() === "GET" && (u.pathname === "/" ||
		    /^\/[^/]+\/stats$/.test(u.pathname)))
			return strip(route);
		return route.continue();
	};
	const probes = ["/users/keys", "/users", "/"].map((p) =>
	    page.waitForResponse((r) => new URL(r.url()).pathname === p &&
	    (p !== "/" || new URL(r.url()).searchParams.has("sort"))));
	await page.route((u) => u.origin === ORIGIN &&
	    !u.pathname.startsWith("/ui/"), old);
	try {
		await page.reload();
		await loggedIn();
		await Promise.all(probes);
		await until(async () => (await rows.count()) === 10, "the links");
		// The answers are in; give the page a moment to apply them.
		await page.waitForTimeout(300);
		for (const sel of ["#keys", "#account-delete-open",
		    "#search-form", "#sort-box", "#meta-fields",
		    ".link-tags:visible", ".link-title:visible"])
			assert.equal(await $(sel).first().isVisible(), false,
			    sel + " on an older server");
		const link = await textOf(rows.first().locator("a.short"));
		await rows.first().getByRole("button", { name: "Edit " + link }).
		    click();
		assert.equal(await rows.first().locator(".edit-meta").
		    isVisible(), false);
		await rows.first().locator(".edit-url").press("Escape");
	} finally {
		await page.unrouteAll();
	}
	// This server has them all.
	await page.reload();
	await loggedIn();
	for (const sel of ["#keys", "#account-delete-open", "#search-form",
	    "#sort-box", "#meta-fields"])
		await until(() => $(sel).isVisible(), sel);
});

await step("phone-width", async () => {
	await page.setViewportSize({ width: 360, height: 740 });
	await page.reload();
	await loggedIn();
	await until(async () => (await rows.count()) === 10, "the links");
	const fits = () => page.evaluate(() =>
	    document.documentElement.scrollWidth <= window.innerWidth);
	assert.ok(await fits(), "no sideways scrolling (links)");
	// Every control is large enough to hit with a thumb.
	const small = await page.evaluate(() => Array.from(
	    document.querySelectorAll("button, input, select")).filter(
	    (e) => e.offsetParent !== null &&
	    e.getBoundingClientRect().height < 32).map((e) => e.outerHTML));
	assert.deepEqual(small, [], "controls at least 32 px high");
	await shot("11-phone-links");
	await shot("11-phone-links-top", { fullPage: false });
	await logOut();
	assert.ok(await fits(), "no sideways scrolling (log in)");
	await shot("12-phone-login", { fullPage: false });
	await page.setViewportSize({ width: 1000, height: 760 });
});

await step("dark-scheme", async () => {
	await logInWith(user, pw2);
	await loggedIn();
	await page.emulateMedia({ colorScheme: "dark" });
	const bg = await page.evaluate(() =>
	    getComputedStyle(document.body).backgroundColor);
	const [r, g, b] = bg.match(/\d+/g).map(Number);
	assert.ok(r + g + b < 120, "a dark background: " + bg);
	await shot("13-dark", { fullPage: false });
	await page.emulateMedia({ colorScheme: "light" });
});

await step("export-and-import", async () => {
	const token = await pageToken();
	await until(() => $("#transfer").isVisible(), "the export section");
	// Export: a download of every link, named by the server.
	const [download] = await Promise.all([page.waitForEvent("download"),
	    page.getByRole("button", { name: "Export all links (CSV)" }).
	    click()]);
	assert.match(download.suggestedFilename(), new RegExp("^shortd-" +
	    user + "-\\d{4}-\\d{2}-\\d{2}\\.csv$"));
	const file = path.join(OUT, "export.csv");
	await download.saveAs(file);
	const lines = fs.readFileSync(file, "utf8").split(/\r?\n/).filter(
	    (l) => l !== "");
	assert.equal(lines[0], "id,url,title,tags,created_at,expires_at," +
	    "max_visits,visits");
	const all = (await apiCall("GET", "/?limit=100", undefined, token)).
	    data.items;
	assert.equal(lines.length - 1, all.length, "one line per link");
	for (const it of all)
		assert.ok(lines.some((l) => l.startsWith(it.id + "," + it.value +
		    ",")), "the export has " + it.id);
	const guide = lines.find((l) => l.startsWith(tagged.guide + ","));
	assert.match(guide, new RegExp(",Tagging guide " + suffix + ","));
	assert.deepEqual(guide.split(",")[3].split("|").sort(), ["docs",
	    "howto", "team-a"]);
	await seeText($("#status"), /exported to shortd-/, "the announcement");
	// Import: two good rows and a bad one.
	const a = "imp-a-" + suffix, b = "imp-b-" + suffix;
	const csv = "id,url,title,tags\r\n" +
	    a + ",https://example.org/imported/a,Imported A,import\r\n" +
	    ",ftp://example.org/not-http,Bad row,import\r\n" +
	    b + ",https://example.org/imported/b,,import|second\r\n";
	const picker = $("#import-form").getByLabel("CSV file");
	await picker.setInputFiles({ name: "links.csv", mimeType: "text/csv",
	    buffer: Buffer.from(csv) });
	await $("#import-form").getByRole("button", { name: "Import" }).click();
	await seeText($("#import-summary"), /^2 links created from links\.csv; 1 row skipped\.$/,
	    "the summary");
	const skipped = await $("#import-skipped tbody tr").evaluateAll(
	    (trs) => trs.map((tr) => Array.from(tr.cells).map((c) =>
	    c.textContent)));
	assert.equal(skipped.length, 1);
	assert.equal(skipped[0][0], "3", "the line of the bad row");
	assert.equal(skipped[0][1], "—", "it had no id");
	assert.match(skipped[0][2], /\S/, "and a reason");
	assert.equal(await $("#import-renamed-box").isVisible(), false);
	await shot("22-import-result");
	// They are links now, with their tags.
	let r = await apiCall("GET", "/" + a);
	assert.equal(r.status, 301);
	assert.equal(r.headers.get("location"), "https://example.org/imported/a");
	r = await apiCall("GET", "/?tag=import", undefined, token);
	assert.deepEqual(r.data.items.map((i) => i.id).sort(), [a, b].sort());
	await until(async () => (await shownIds()).includes(a), "the list");
	// Not a CSV of links: the server's words at the file.
	await picker.setInputFiles({ name: "notes.txt", mimeType: "text/plain",
	    buffer: Buffer.from("hello\r\nworld\r\n") });
	await $("#import-form").getByRole("button", { name: "Import" }).click();
	await seeText($("#import-file-error"), /first line must name the columns/,
	    "the header error");
	assert.equal(await picker.getAttribute("aria-invalid"), "true");
	assert.equal(await $("#import-result").isVisible(), false);
});

await step("delete-account", async () => {
	const token = await pageToken();
	const k = await apiCall("POST", "/users/keys", { name: "to go" },
	    token);
	assert.equal(k.status, 201);
	const kept = created[0];
	const dialog = $("#account-dialog");
	await page.getByRole("button", { name: "Delete account",
	    exact: true }).click();
	await until(() => dialog.isVisible(), "the dialog");
	assert.equal(await textOf($("#account-confirm-name")), user);
	assert.equal(await page.evaluate(() =>
	    document.activeElement.textContent), "Cancel",
	    "Cancel has the focus");
	const password = dialog.getByLabel("Your password");
	const confirm = dialog.getByLabel(/^Type your username/);
	const go = dialog.getByRole("button", { name: "Delete my account" });
	const canLogIn = async () => (await apiCall("POST", "/users/login",
	    { username: user, password: pw2 })).status === 200;
	// A wrong confirmation: refused before anything is sent.
	await password.fill(pw2);
	await confirm.fill(user.toUpperCase());
	await go.click();
	await seeText($("#account-confirm-error"), /exactly as shown/,
	    "the confirmation error");
	assert.equal(await confirm.getAttribute("aria-invalid"), "true");
	await shot("21-delete-account", { fullPage: false });
	assert.ok(await canLogIn(), "nothing was deleted");
	// A wrong password: the server's words at the password.
	await password.fill(pw2 + "-wrong");
	await confirm.fill(user);
	await go.click();
	await seeText($("#account-password-error"),
	    /wrong username or password/i, "the wrong-password error");
	assert.equal(await $("#account-confirm-error").isVisible(), false);
	assert.ok(await canLogIn(), "still nothing deleted");
	// The right ones: gone, and logged out.
	await password.fill(pw2);
	await go.click();
	await until(() => login.isVisible(), "the log-in form");
	await seeText($("#status"), new RegExp("account " + user +
	    " was deleted"), "the announcement");
	assert.equal(await page.evaluate(() =>
	    sessionStorage.getItem("shortd.session")), null);
	assert.equal(await canLogIn(), false, "the login is refused");
	assert.equal((await apiCall("GET", "/", undefined, token)).status,
	    403, "the token is refused");
	assert.equal((await fetch(BASE + "/?limit=1", { headers:
	    { "X-Api-Key": k.data.key } })).status, 403, "the key too");
	assert.equal((await apiCall("GET", "/" + kept.id)).status, 404,
	    "the links are gone");
	await logInWith(user, pw2);
	await seeText($("#login-password-error"), /wrong username/i,
	    "the page refuses the login too");
});

await step("same-origin-only-no-errors", async () => {
	assert.deepEqual(offOrigin, [], "requests to other origins");
	assert.deepEqual(consoleProblems, [], "console errors or CSP reports");
	assert.deepEqual(pageErrors, [], "uncaught errors");
	// The page's own files carry the CSP and are revalidated.
	for (const f of ["", "app.js", "app.css", "icon.svg"]) {
		const r = await fetch(BASE + "/ui/" + f);
		assert.equal(r.status, 200, f);
		assert.match(r.headers.get("content-security-policy") || "",
		    /^default-src 'self';/, f);
		assert.equal(r.headers.get("cache-control"), "no-cache", f);
		const etag = r.headers.get("etag");
		assert.ok(etag, "an ETag on " + f);
		const again = await fetch(BASE + "/ui/" + f,
		    { headers: { "If-None-Match": etag } });
		assert.equal(again.status, 304, f);
	}
});

await browser.close();
console.log(passed + " passed, " + failed.length + " failed");
process.exit(failed.length === 0 ? 0 : 1);
