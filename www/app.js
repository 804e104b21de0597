/*
 * shortd's web page: the JSON API of the same origin, nothing else.
 *
 * The token lives in sessionStorage (gone when the tab closes) and goes
 * out only as an Authorization header; no cookie is ever set.  Every
 * answer that is not a success is shown in words next to the field it
 * concerns, or at the top of the form when it concerns none.  Text from
 * the server or the user goes into the page through textContent only.
 *
 * Link features that not every server has (custom aliases, expiry,
 * visit counts, QR codes) are shown only once the server has shown it
 * has them: GET /:id/stats answering 200, GET /:id/qr answering an
 * image, a create answer carrying the alias that was asked for.  So
 * are the management features: titles, tags and search (the list
 * refuses an unknown ?sort=, or a link carries "tags"), API keys
 * (GET /users/keys answers a list), export and import (HEAD /export
 * answers 200) and account deletion (the 405 of GET /users allows
 * DELETE).
 */
"use strict";

(function () {
	const KEY = "shortd.session";
	const PAGE_KEY = "shortd.limit";
	const COPIED_MS = 2500;
	const STATUS_MS = 10000;

	/* What the server has shown it supports: null until known. */
	const features = { alias: null, stats: null, expiry: null, qr: null,
	    tags: null, keys: null, accountDelete: null, transfer: null };

	const session = { token: null, username: null, expires: 0 };
	let expiryTimer = null;

	/* The list: cursors[i] is the ?after= of page i (null: the first). */
	const list = { cursors: [null], index: 0, next: null, limit: 10,
	    loading: 0, q: "", tags: [], sort: "-created" };

	const $ = (id) => document.getElementById(id);

	/* ------------------------------------------------------------ */
	/* talking to the API                                           */
	/* ------------------------------------------------------------ */

	function sentence(s) {
		s = String(s || "").trim();
		if (s === "")
			return s;
		s = s.charAt(0).toUpperCase() + s.slice(1);
		return /[.!?]$/.test(s) ? s : s + ".";
	}

	/* The words a person sees for a failed answer. */
	function describe(status, data, headers) {
		const msg = data && typeof data.message === "string" ?
		    data.message : "";
		if (status === 0)
			return "The server could not be reached. Check the " +
			    "connection and try again.";
		if (status === 503) {
			const after = headers && headers.get("Retry-After");
			return "The service is unavailable right now" +
			    (after ? "; try again in " + after + " s." :
			    "; try again shortly.");
		}
		if (status === 504)
			return "The server took too long to answer; try again.";
		if (status === 413)
			return "That is too long for the server (" +
			    (msg || "request too large") + ").";
		if (msg !== "")
			return sentence(msg);
		if (data && typeof data.detail === "string")
			return sentence(data.detail) + " (HTTP " + status + ")";
		return "The server answered HTTP " + status + ".";
	}

	/*
	 * One API call -> { ok, status, data, detail, message }.  Never
	 * throws: a network failure is status 0 with its own message.
	 * opts: auth (false: no token), file and type (a body sent as it
	 * is), raw (a success keeps its Response, unread, in r.response).
	 */
	async function api(method, path, body, opts) {
		const o = opts || {};
		const headers = { "Accept": "application/json" };
		const init = { method: method, headers: headers,
		    cache: "no-store", credentials: "omit",
		    redirect: "manual" };
		if (o.file !== undefined) {
			headers["Content-Type"] = o.type;
			init.body = o.file;
		} else if (body !== undefined) {
			headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		if (o.auth !== false && session.token)
			headers["Authorization"] = "Bearer " + session.token;
		let res;
		try {
			res = await fetch(path, init);
		} catch (e) {
			return { ok: false, status: 0, data: null, detail: "",
			    message: describe(0) };
		}
		if (o.raw && res.ok)
			return { ok: true, status: res.status, data: null,
			    headers: res.headers, detail: "", message: "",
			    response: res };
		let data = null;
		if (res.status !== 204 && method !== "HEAD") {
			const text = await res.text().catch(() => "");
			try {
				data = text ? JSON.parse(text) : null;
			} catch (e) {
				data = null;
			}
		}
		const r = { ok: res.ok, status: res.status, data: data,
		    headers: res.headers,
		    detail: data && typeof data.detail === "string" ?
		    data.detail : "", message: "" };
		if (!res.ok) {
			r.message = describe(res.status, data, res.headers);
			if (o.auth !== false && isTokenFailure(r)) {
				sessionEnded();
				r.sessionEnded = true;
			}
		}
		return r;
	}

	/* A 403 about the token itself (not about whose link it is). */
	function isTokenFailure(r) {
		if (r.status !== 403 || !session.token)
			return false;
		const m = r.data && typeof r.data.message === "string" ?
		    r.data.message : "";
		return /token/i.test(m);
	}

	/* ------------------------------------------------------------ */
	/* errors next to fields                                        */
	/* ------------------------------------------------------------ */

	function showFieldError(input, errEl, text) {
		errEl.textContent = text;
		errEl.hidden = false;
		input.setAttribute("aria-invalid", "true");
	}

	function showFormError(el, text) {
		el.textContent = text;
		el.hidden = false;
	}

	function clearErrors(root) {
		root.querySelectorAll(".field-error, .form-error").forEach(
		    (e) => { e.textContent = ""; e.hidden = true; });
		root.querySelectorAll("[aria-invalid]").forEach(
		    (e) => e.removeAttribute("aria-invalid"));
	}

	function fieldError(id, text) {
		showFieldError($(id), $(id + "-error"), text);
	}

	let statusTimer = null;

	/* Say what happened, in the live region at the top; it fades
	 * after a while or when the next form is sent. */
	function announce(text) {
		const s = $("status");
		/* Re-set so a repeated message is announced again. */
		s.textContent = "";
		window.clearTimeout(statusTimer);
		statusTimer = window.setTimeout(() => {
			s.textContent = text;
			statusTimer = window.setTimeout(() => {
				s.textContent = "";
			}, STATUS_MS);
		}, 30);
	}

	function clearStatus() {
		window.clearTimeout(statusTimer);
		$("status").textContent = "";
	}

	function busy(form, on) {
		form.querySelectorAll("button, input, select").forEach((e) => {
			if (on) {
				e.dataset.wasDisabled = e.disabled ? "1" : "";
				e.disabled = true;
			} else if (e.dataset.wasDisabled !== undefined) {
				e.disabled = e.dataset.wasDisabled === "1";
				delete e.dataset.wasDisabled;
			}
		});
		form.setAttribute("aria-busy", on ? "true" : "false");
	}

	/* ------------------------------------------------------------ */
	/* the session                                                  */
	/* ------------------------------------------------------------ */

	function saveSession(token, username, expiresIn) {
		session.token = token;
		session.username = username;
		session.expires = Date.now() + Math.max(0, expiresIn || 0) * 1000;
		try {
			sessionStorage.setItem(KEY, JSON.stringify(session));
		} catch (e) {
			/* Storage refused (private mode): this tab only. */
		}
		armExpiry();
	}

	function loadSession() {
		let s = null;
		try {
			s = JSON.parse(sessionStorage.getItem(KEY) || "null");
		} catch (e) {
			s = null;
		}
		if (!s || typeof s.token !== "string" || s.token === "" ||
		    typeof s.username !== "string" ||
		    !(s.expires > Date.now())) {
			dropSession();
			return false;
		}
		session.token = s.token;
		session.username = s.username;
		session.expires = s.expires;
		armExpiry();
		return true;
	}

	function dropSession() {
		session.token = null;
		session.username = null;
		session.expires = 0;
		if (expiryTimer !== null)
			window.clearTimeout(expiryTimer);
		expiryTimer = null;
		try {
			sessionStorage.removeItem(KEY);
		} catch (e) {
			/* nothing stored */
		}
	}

	function armExpiry() {
		if (expiryTimer !== null)
			window.clearTimeout(expiryTimer);
		const left = session.expires - Date.now();
		/* setTimeout holds 2^31-1 ms at most. */
		expiryTimer = window.setTimeout(sessionEnded,
		    Math.min(Math.max(left, 0), 0x7fffffff));
	}

	function sessionEnded() {
		if (!session.token)
			return;
		const who = session.username;
		dropSession();
		closeDialogs();
		showAuth();
		$("login-username").value = who || "";
		showFormError($("login-error"), "Your session has ended. " +
		    "Log in again to go on.");
		$("login-password").focus();
	}

	/* ------------------------------------------------------------ */
	/* views                                                        */
	/* ------------------------------------------------------------ */

	function closeDialogs() {
		document.querySelectorAll("dialog").forEach((d) => {
			if (d.open)
				d.close();
		});
	}

	function showAuth() {
		$("app-view").hidden = true;
		$("account").hidden = true;
		$("auth-view").hidden = false;
		$("links-list").replaceChildren();
		$("shorten-result").hidden = true;
		$("shorten-form").reset();
		$("keys-list").replaceChildren();
		$("import-form").reset();
		$("import-result").hidden = true;
		hideNewKey();
		$("key-form").reset();
		resetFilters();
		clearErrors($("app-view"));
		document.title = "shortd — log in";
	}

	function showApp() {
		$("auth-view").hidden = true;
		$("app-view").hidden = false;
		$("account").hidden = false;
		$("who-name").textContent = session.username;
		clearErrors($("auth-view"));
		$("login-form").reset();
		$("signup-form").reset();
		document.title = "shortd — your links";
		list.cursors = [null];
		list.index = 0;
		resetFilters();
		applyFeatures();
		loadPage();
		probeManagement();
	}

	/* Show the controls the server has shown it supports. */
	function applyFeatures() {
		if (features.alias === false) {
			$("shorten-alias").disabled = true;
			$("shorten-alias-hint").textContent = "This server does " +
			    "not support custom aliases: links get a random id.";
		}
		$("expiry-fields").hidden = features.expiry !== true;
		const tags = features.tags === true;
		$("meta-fields").hidden = !tags;
		$("search-form").hidden = !tags;
		$("sort-box").hidden = !tags;
		$("keys").hidden = features.keys !== true;
		$("transfer").hidden = features.transfer !== true;
		$("account-delete-open").hidden = features.accountDelete !== true;
	}

	/*
	 * What the account and the list can do on this server, asked once
	 * per log-in for what is not known yet.  Each question is a request
	 * an older server answers harmlessly.
	 */
	async function probeManagement() {
		const jobs = [loadKeys()];
		if (features.tags === null)
			jobs.push(api("GET", "/?limit=1&sort=~").then((r) => {
				/* A server with search refuses the sort;
				 * one without ignores it. */
				if (r.status === 400 && /\bsort\b/i.test(r.message))
					features.tags = true;
				else if (r.ok)
					features.tags = false;
			}));
		if (features.transfer === null)
			jobs.push(api("HEAD", "/export").then((r) => {
				/* An older server: no such link (404). */
				if (r.status === 200 || r.status === 404)
					features.transfer = r.status === 200;
			}));
		if (features.accountDelete === null)
			jobs.push(api("GET", "/users", undefined,
			    { auth: false }).then((r) => {
				if (r.status === 405)
					features.accountDelete = /\bDELETE\b/.test(
					    r.headers.get("Allow") || "");
			}));
		await Promise.all(jobs);
		if (session.token)
			applyFeatures();
	}

	/* ------------------------------------------------------------ */
	/* log in, sign up, change password, log out                    */
	/* ------------------------------------------------------------ */

	async function logIn(username, password) {
		return api("POST", "/users/login",
		    { username: username, password: password }, { auth: false });
	}

	function credentialsError(prefix, r) {
		/* 400s name the field they are about; 403 is "wrong
		 * username or password", shown at the password. */
		const m = r.message;
		if (r.status === 403)
			fieldError(prefix + "-password", m);
		else if (r.status === 409 || /username/i.test(m))
			fieldError(prefix + "-username", m);
		else if (/password/i.test(m))
			fieldError(prefix + "-password", m);
		else
			showFormError($(prefix + "-error"), m);
	}

	async function onLogin(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		const user = $("login-username").value;
		const pw = $("login-password").value;
		let bad = false;
		if (user === "") {
			fieldError("login-username", "Enter your username.");
			bad = true;
		}
		if (pw === "") {
			fieldError("login-password", "Enter your password.");
			bad = true;
		}
		if (bad) {
			form.querySelector("[aria-invalid]").focus();
			return;
		}
		busy(form, true);
		const r = await logIn(user, pw);
		busy(form, false);
		if (!r.ok || !r.data || typeof r.data.token !== "string") {
			if (r.ok)
				r.message = "The server's answer had no token.";
			credentialsError("login", r);
			(form.querySelector("[aria-invalid]") ||
			    $("login-username")).focus();
			return;
		}
		saveSession(r.data.token, user, r.data.expires_in || 3600);
		showApp();
		announce("Logged in as " + user + ".");
		$("shorten-url").focus();
	}

	async function onSignup(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		const user = $("signup-username").value;
		const pw = $("signup-password").value;
		const pw2 = $("signup-password2").value;
		if (user === "")
			fieldError("signup-username", "Choose a username.");
		if (pw === "")
			fieldError("signup-password", "Choose a password.");
		else if (pw !== pw2)
			fieldError("signup-password2", "The two passwords differ.");
		if (form.querySelector("[aria-invalid]")) {
			form.querySelector("[aria-invalid]").focus();
			return;
		}
		busy(form, true);
		const r = await api("POST", "/users",
		    { username: user, password: pw }, { auth: false });
		if (!r.ok) {
			busy(form, false);
			credentialsError("signup", r);
			(form.querySelector("[aria-invalid]") ||
			    $("signup-username")).focus();
			return;
		}
		const l = await logIn(user, pw);
		busy(form, false);
		if (!l.ok || !l.data || typeof l.data.token !== "string") {
			showFormError($("signup-error"), "Your account was " +
			    "created, but logging in failed: " +
			    (l.message || "no token in the answer.") +
			    " Try logging in.");
			$("login-username").value = user;
			return;
		}
		saveSession(l.data.token, user, l.data.expires_in || 3600);
		showApp();
		announce("Account " + user + " created; you are logged in.");
		$("shorten-url").focus();
	}

	function onLogout() {
		dropSession();
		closeDialogs();
		showAuth();
		announce("You are logged out.");
		$("auth-title").focus();
	}

	function openPassword() {
		const d = $("password-dialog");
		$("password-form").reset();
		$("password-username").value = session.username;
		clearErrors(d);
		d.showModal();
		$("password-current").focus();
	}

	async function onPassword(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		const cur = $("password-current").value;
		const pw = $("password-new").value;
		const pw2 = $("password-new2").value;
		if (cur === "")
			fieldError("password-current",
			    "Enter your current password.");
		if (pw === "")
			fieldError("password-new", "Choose a new password.");
		else if (pw !== pw2)
			fieldError("password-new2",
			    "The two new passwords differ.");
		if (form.querySelector("[aria-invalid]")) {
			form.querySelector("[aria-invalid]").focus();
			return;
		}
		busy(form, true);
		const r = await api("PUT", "/users", { username:
		    session.username, password: cur, new_password: pw },
		    { auth: false });
		busy(form, false);
		if (!r.ok) {
			if (r.status === 403)
				fieldError("password-current", r.message);
			else if (/new/i.test(r.message) ||
			    /password/i.test(r.message))
				fieldError("password-new", r.message);
			else
				showFormError($("password-error"), r.message);
			(form.querySelector("[aria-invalid]") ||
			    $("password-current")).focus();
			return;
		}
		$("password-dialog").close();
		announce("Your password was changed. Use the new one next " +
		    "time you log in.");
		$("password-open").focus();
	}

	/* ------------------------------------------------------------ */
	/* copy                                                         */
	/* ------------------------------------------------------------ */

	async function copyText(text) {
		if (navigator.clipboard && window.isSecureContext) {
			try {
				await navigator.clipboard.writeText(text);
				return true;
			} catch (e) {
				/* denied: try the old way */
			}
		}
		const ta = document.createElement("textarea");
		ta.value = text;
		ta.setAttribute("readonly", "");
		ta.className = "visually-hidden";
		document.body.appendChild(ta);
		ta.select();
		let ok = false;
		try {
			ok = document.execCommand("copy");
		} catch (e) {
			ok = false;
		}
		ta.remove();
		return ok;
	}

	async function onCopy(button, text, errEl, what) {
		const ok = await copyText(text);
		if (errEl) {
			errEl.hidden = true;
			errEl.textContent = "";
		}
		if (!ok) {
			const msg = "Copying was refused by the browser: select " +
			    "the link and press Ctrl+C (⌘C).";
			if (errEl)
				showFormError(errEl, msg);
			announce(msg);
			return;
		}
		button.textContent = "Copied ✓";
		button.dataset.state = "copied";
		button.dataset.copied = text;
		announce("Copied " + (what || text) + " to the clipboard.");
		window.clearTimeout(Number(button.dataset.timer || 0));
		button.dataset.timer = String(window.setTimeout(() => {
			button.textContent = "Copy";
			delete button.dataset.state;
		}, COPIED_MS));
	}

	/* ------------------------------------------------------------ */
	/* shorten                                                      */
	/* ------------------------------------------------------------ */

	function shortUrl(id, data) {
		if (data && typeof data.short_url === "string" &&
		    /^https?:\/\//i.test(data.short_url))
			return data.short_url;
		return window.location.origin + "/" + encodeURIComponent(id);
	}

	function safeHref(url) {
		return /^https?:\/\//i.test(url) ? url : "#";
	}

	/* "docs, Team-A #x" -> ["docs", "team-a", "x"]: the server checks
	 * the rest (and says what is wrong). */
	function parseTags(text) {
		return String(text).split(/[\s,]+/).map((t) =>
		    t.replace(/^#/, "").toLowerCase()).filter((t) => t !== "");
	}

	/* Which of title and tags a 400 is about: "title", "tags" or "". */
	function metaField(r) {
		if (r.status !== 400)
			return "";
		if (/\btitle\b/i.test(r.message))
			return "title";
		if (/\btags?\b/i.test(r.message))
			return "tags";
		return "";
	}

	/* Which field of the shorten form a failed create is about. */
	function shortenError(r, sentAlias) {
		const m = r.message;
		if (metaField(r) !== "")
			fieldError("new-" + metaField(r), m);
		else if (r.status === 409 && sentAlias)
			fieldError("shorten-alias", m);
		else if (r.status === 400 && sentAlias &&
		    /\b(alias|id)\b/i.test(m) && !/\burl\b/i.test(m))
			fieldError("shorten-alias", m);
		else if (r.status === 400 && /expir/i.test(m))
			fieldError("shorten-expires", m);
		else if (r.status === 400 && /visit/i.test(m))
			fieldError("shorten-max", m);
		else if (r.status === 400 || r.status === 413)
			fieldError("shorten-url", m);
		else
			showFormError($("shorten-error"), m);
	}

	async function onShorten(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		$("shorten-alias-hint").hidden = false;
		const url = $("shorten-url").value.trim();
		const alias = $("shorten-alias").disabled ? "" :
		    $("shorten-alias").value.trim();
		if (url === "") {
			fieldError("shorten-url", "Enter the URL to shorten.");
			$("shorten-url").focus();
			return;
		}
		const body = { value: url };
		if (alias !== "")
			body.id = alias;
		if (features.tags === true) {
			const title = $("new-title").value.trim();
			const tags = parseTags($("new-tags").value);
			if (title !== "")
				body.title = title;
			if (tags.length > 0)
				body.tags = tags;
		}
		if (features.expiry === true) {
			const exp = $("shorten-expires").value;
			const max = $("shorten-max").value.trim();
			if (exp !== "")
				body.expires_in = Number(exp);
			if (max !== "") {
				if (!/^[1-9][0-9]*$/.test(max)) {
					fieldError("shorten-max", "Enter a " +
					    "whole number of visits, 1 or more.");
					$("shorten-max").focus();
					return;
				}
				body.max_visits = Number(max);
			}
		}
		busy(form, true);
		const r = await api("POST", "/", body);
		busy(form, false);
		if (r.sessionEnded)
			return;
		if (!r.ok || !r.data || typeof r.data.id !== "string") {
			if (r.ok)
				r.message = "The server's answer had no id.";
			shortenError(r, alias !== "");
			(form.querySelector("[aria-invalid]") ||
			    $("shorten-url")).focus();
			return;
		}
		const id = r.data.id;
		const link = shortUrl(id, r.data);
		$("result-link").textContent = link;
		$("result-link").href = link;
		$("result-target").textContent = url;
		$("result-copy").textContent = "Copy";
		delete $("result-copy").dataset.state;
		$("shorten-result").hidden = false;
		if (alias !== "") {
			if (id === alias) {
				features.alias = true;
			} else {
				/* An old server ignores "id": say so, and
				 * stop offering the field. */
				features.alias = false;
				applyFeatures();
				$("shorten-alias-hint").hidden = true;
				fieldError("shorten-alias", "This server does " +
				    "not support custom aliases: it ignored “" +
				    alias + "” and gave the link the id " +
				    id + ".");
			}
		}
		$("shorten-url").value = "";
		$("new-title").value = "";
		$("new-tags").value = "";
		$("shorten-expires").value = "";
		$("shorten-max").value = "";
		if (features.alias !== false)
			$("shorten-alias").value = "";
		announce("Short link " + link + " created.");
		$("result-copy").focus();
		list.cursors = [null];
		list.index = 0;
		await loadPage();
	}

	/* ------------------------------------------------------------ */
	/* the list                                                     */
	/* ------------------------------------------------------------ */

	async function loadPage(focusHeading) {
		const n = ++list.loading;
		const err = $("links-error");
		err.hidden = true;
		const after = list.cursors[list.index];
		let path = "/?limit=" + list.limit;
		if (list.sort !== "-created")
			path += "&sort=" + encodeURIComponent(list.sort);
		for (const t of list.tags)
			path += "&tag=" + encodeURIComponent(t);
		if (list.q !== "")
			path += "&q=" + encodeURIComponent(list.q);
		if (after)
			path += "&after=" + encodeURIComponent(after);
		$("links-loading").hidden = false;
		const r = await api("GET", path);
		if (n !== list.loading)
			return;		/* a newer load won */
		$("links-loading").hidden = true;
		if (r.sessionEnded)
			return;
		$("page-size").removeAttribute("aria-invalid");
		clearErrors($("search-form"));
		if (r.status === 400 && filtered() &&
		    /^invalid (q|tag|sort)\b/i.test(r.message)) {
			/* The search's own words, at the search field. */
			fieldError("search-q", r.message.replace(/^invalid q: /i,
			    "The search text: ").replace(/^invalid tag: /i,
			    "A tag to look for: "));
			$("links-list").replaceChildren();
			list.next = null;
			updatePager();
			return;
		}
		if (!r.ok || !r.data || !Array.isArray(r.data.items)) {
			showFormError(err, "Your links could not be loaded: " +
			    (r.ok ? "the answer had no list." : r.message));
			/* A server with a lower list_max_limit refuses the
			 * page size: say so at the select. */
			if (r.status === 400 && /limit/i.test(r.message))
				$("page-size").setAttribute("aria-invalid",
				    "true");
			$("links-list").replaceChildren();
			list.next = null;
			updatePager();
			return;
		}
		if (r.data.items.length === 0 && list.index > 0) {
			/* The last links of this page were deleted. */
			list.cursors.pop();
			list.index--;
			return loadPage(focusHeading);
		}
		list.next = typeof r.data.next === "string" ? r.data.next : null;
		renderItems(r.data.items);
		updatePager();
		if (focusHeading)
			$("links-title").focus();
		probeFeatures(r.data.items);
	}

	function updatePager() {
		const items = $("links-list").children.length;
		$("links-empty").textContent = emptyText();
		$("links-empty").hidden = !(items === 0 && list.index === 0 &&
		    $("links-error").hidden && $("search-q-error").hidden);
		/* Newer and older only mean something in the default order. */
		const byAge = list.sort === "-created" || list.sort === "created";
		const newerFirst = list.sort === "-created";
		$("page-prev").textContent = "← " + (byAge ? (newerFirst ?
		    "Newer" : "Older") : "Previous");
		$("page-next").textContent = (byAge ? (newerFirst ? "Older" :
		    "Newer") : "Next") + " →";
		$("page-prev").disabled = list.index === 0;
		$("page-next").disabled = list.next === null;
		const first = list.index * list.limit + 1;
		$("page-info").textContent = items === 0 ? "" :
		    "Page " + (list.index + 1) + ": links " + first + "–" +
		    (first + items - 1);
	}

	/* ------------------------------------------------------------ */
	/* search, tag filters and order                                */
	/* ------------------------------------------------------------ */

	function filtered() {
		return list.q !== "" || list.tags.length > 0 ||
		    list.sort !== "-created";
	}

	/* What an empty list means, in words. */
	function emptyText() {
		if (list.q === "" && list.tags.length === 0)
			return "No links yet: shorten a URL above.";
		const parts = [];
		if (list.q !== "")
			parts.push("match “" + list.q + "”");
		if (list.tags.length === 1)
			parts.push("have the tag " + list.tags[0]);
		else if (list.tags.length > 1)
			parts.push("have all the tags " + list.tags.join(", "));
		return "No links " + parts.join(" and ") + ". Remove a " +
		    "filter, or show all your links.";
	}

	function resetFilters() {
		list.q = "";
		list.tags = [];
		list.sort = "-created";
		$("search-q").value = "";
		$("sort").value = list.sort;
		clearErrors($("search-form"));
		renderFilters();
	}

	/* The active tag filters as chips (a click removes one), and
	 * whether each row's tag is one of them. */
	function renderFilters() {
		$("tag-filters").replaceChildren(...list.tags.map((t) => {
			const li = document.createElement("li");
			const b = document.createElement("button");
			b.type = "button";
			b.className = "chip";
			b.textContent = t;
			b.setAttribute("aria-label", "Remove the filter by tag " +
			    t);
			b.addEventListener("click", () => {
				const i = list.tags.indexOf(t);
				list.tags = list.tags.filter((x) => x !== t);
				reloadFiltered();
				/* The focus goes to the next chip, or the
				 * search box once none is left. */
				const left = $("tag-filters").querySelectorAll(
				    "button");
				(left[Math.min(i, left.length - 1)] ||
				    $("search-q")).focus();
			});
			li.append(b);
			return li;
		}));
		$("filters").hidden = list.tags.length === 0 && list.q === "";
		$("filters-label").hidden = list.tags.length === 0;
		document.querySelectorAll(".link-tags button.chip").forEach(
		    (b) => b.setAttribute("aria-pressed",
		    String(list.tags.includes(b.textContent))));
	}

	function reloadFiltered() {
		list.cursors = [null];
		list.index = 0;
		renderFilters();
		return loadPage();
	}

	/* The search box: "#tag" words become tag filters, the rest the
	 * text to look for. */
	function onSearch(ev) {
		ev.preventDefault();
		const input = $("search-q");
		const words = input.value.trim().split(/\s+/).filter((w) =>
		    w !== "");
		const tags = words.filter((w) => /^#./.test(w)).map((w) =>
		    w.slice(1).toLowerCase());
		const text = words.filter((w) => !/^#./.test(w)).join(" ");
		for (const t of tags)
			if (!list.tags.includes(t))
				list.tags.push(t);
		list.q = text;
		input.value = text;
		reloadFiltered();
	}

	function toggleTag(t) {
		if (list.tags.includes(t))
			list.tags = list.tags.filter((x) => x !== t);
		else
			list.tags.push(t);
		reloadFiltered().then(() => $("links-title").focus());
	}

	function renderItems(items) {
		if (items.some((it) => it && Array.isArray(it.tags)) &&
		    features.tags !== true) {
			features.tags = true;
			applyFeatures();
		}
		const ul = $("links-list");
		const rows = items.filter((it) => it && typeof it.id ===
		    "string").map(makeRow);
		ul.replaceChildren(...rows);
	}

	let rowSeq = 0;

	function makeRow(item) {
		const tpl = $("link-template").content.firstElementChild;
		const li = tpl.cloneNode(true);
		const id = item.id;
		const value = typeof item.value === "string" ? item.value : "";
		const link = shortUrl(id, item);
		const seq = ++rowSeq;
		li.dataset.id = id;

		const a = li.querySelector("a.short");
		a.textContent = link;
		a.href = link;
		const t = li.querySelector("a.target-url");
		t.textContent = value;
		t.href = safeHref(value);
		/* Its title and tags, as the server last said. */
		const tt = { title: typeof item.title === "string" ?
		    item.title : "", tags: Array.isArray(item.tags) ?
		    item.tags.filter((x) => typeof x === "string") : [] };
		showTitleTags(li, link, tt);

		const errEl = li.querySelector(".row-error");
		const copy = li.querySelector("button.copy");
		copy.setAttribute("aria-label", "Copy " + link);
		copy.addEventListener("click",
		    () => onCopy(copy, link, errEl));

		/* Inline edit. */
		const form = li.querySelector("form.edit");
		const input = li.querySelector(".edit-url");
		const label = li.querySelector(".edit-label");
		const editErr = li.querySelector(".edit-error");
		input.id = "edit-url-" + seq;
		editErr.id = "edit-error-" + seq;
		label.htmlFor = input.id;
		label.textContent = "New target URL for " + link;
		input.setAttribute("aria-describedby", editErr.id);
		const titleIn = li.querySelector(".edit-title");
		const tagsIn = li.querySelector(".edit-tags");
		for (const [el, name] of [[titleIn, "title"], [tagsIn, "tags"]]) {
			const err = li.querySelector(".edit-" + name + "-error");
			el.id = "edit-" + name + "-" + seq;
			err.id = "edit-" + name + "-error-" + seq;
			el.setAttribute("aria-describedby", err.id);
			const l = li.querySelector(".edit-" + name + "-label");
			l.htmlFor = el.id;
			l.textContent = (name === "title" ? "Title of " :
			    "Tags of ") + link;
		}
		const editBtn = li.querySelector(".edit-open");
		editBtn.setAttribute("aria-label", "Edit " + link);
		editBtn.addEventListener("click", () => {
			clearErrors(li);
			input.value = t.textContent;
			titleIn.value = tt.title;
			tagsIn.value = tt.tags.join(", ");
			li.querySelector(".edit-meta").hidden =
			    features.tags !== true;
			form.hidden = false;
			editBtn.hidden = true;
			input.focus();
			input.select();
		});
		const closeEdit = () => {
			form.hidden = true;
			editBtn.hidden = false;
			clearErrors(form);
			editBtn.focus();
		};
		li.querySelector(".edit-cancel").addEventListener("click",
		    closeEdit);
		form.addEventListener("keydown", (e) => {
			if (e.key === "Escape") {
				e.preventDefault();
				closeEdit();
			}
		});
		form.addEventListener("submit", async (e) => {
			e.preventDefault();
			clearErrors(li);
			const url = input.value.trim();
			if (url === "") {
				showFieldError(input, editErr,
				    "Enter the new target URL.");
				input.focus();
				return;
			}
			const body = { url: url };
			if (features.tags === true) {
				body.title = titleIn.value.trim();
				body.tags = parseTags(tagsIn.value);
			}
			busy(form, true);
			const r = await api("PUT", "/" + encodeURIComponent(id),
			    body);
			busy(form, false);
			if (r.sessionEnded)
				return;
			if (!r.ok) {
				const mf = metaField(r);
				if (mf !== "") {
					const el = mf === "title" ? titleIn : tagsIn;
					showFieldError(el, li.querySelector(".edit-" +
					    mf + "-error"), r.message);
					el.focus();
					return;
				}
				if (r.status === 400 || r.status === 413)
					showFieldError(input, editErr, r.message);
				else if (r.status === 404)
					showFieldError(input, editErr, "This " +
					    "link no longer exists (" +
					    r.message + ")");
				else
					showFieldError(input, editErr,
					    r.message);
				input.focus();
				return;
			}
			const v = r.data && typeof r.data.value === "string" ?
			    r.data.value : url;
			const moved = v !== t.textContent;
			t.textContent = v;
			t.href = safeHref(v);
			if ("title" in body) {
				tt.title = r.data && typeof r.data.title ===
				    "string" ? r.data.title : body.title;
				tt.tags = r.data && Array.isArray(r.data.tags) ?
				    r.data.tags : body.tags;
				showTitleTags(li, link, tt);
			}
			closeEdit();
			announce(moved || !("title" in body) ? link +
			    " now leads to " + v + "." : link + " was saved.");
		});

		/* Delete, after the dialog. */
		const del = li.querySelector(".delete-open");
		del.setAttribute("aria-label", "Delete " + link);
		del.addEventListener("click", () => openDelete(id, link,
		    t.textContent, del));

		/* QR code, where the server makes them. */
		const qrBtn = li.querySelector(".qr-open");
		const img = li.querySelector("img.qr");
		qrBtn.setAttribute("aria-label", "QR code of " + link);
		qrBtn.hidden = features.qr !== true;
		qrBtn.addEventListener("click", () => {
			const show = img.hidden;
			if (show && !img.getAttribute("src")) {
				img.alt = "QR code of " + link;
				img.src = "/" + encodeURIComponent(id) + "/qr";
			}
			img.hidden = !show;
			qrBtn.setAttribute("aria-expanded", String(show));
		});
		img.addEventListener("error", () => {
			img.hidden = true;
			qrBtn.setAttribute("aria-expanded", "false");
			showFormError(errEl, "The QR code could not be loaded.");
		});

		/* Visit analytics, where the server records them. */
		const visBtn = li.querySelector(".visits-open");
		const panel = li.querySelector("section.visits");
		visBtn.setAttribute("aria-label", "Visits of " + link);
		panel.setAttribute("aria-label", "Visits of " + link);
		visBtn.addEventListener("click", async () => {
			const show = panel.hidden;
			visBtn.setAttribute("aria-expanded", String(show));
			if (!show) {
				panel.hidden = true;
				return;
			}
			const r = await api("GET", "/" + encodeURIComponent(id) +
			    "/stats");
			if (r.sessionEnded)
				return;
			if (!r.ok || !r.data || !Array.isArray(r.data.by_day)) {
				visBtn.setAttribute("aria-expanded", "false");
				showFormError(errEl, "The visits could not be " +
				    "loaded: " + r.message);
				return;
			}
			renderVisits(panel, r.data);
			panel.hidden = false;
		});

		/* What the list itself says about the link's state. */
		const meta = describeState(item);
		if (meta.length > 0 || isExpired(item))
			setMeta(li, meta, isExpired(item));
		return li;
	}

	/* The title above the link, its tags (buttons that filter by
	 * them) below. */
	function showTitleTags(li, link, meta) {
		const h = li.querySelector(".link-title");
		h.textContent = meta.title;
		h.hidden = meta.title === "";
		const ul = li.querySelector(".link-tags");
		ul.replaceChildren(...meta.tags.map((tag) => {
			const c = document.createElement("li");
			const b = document.createElement("button");
			b.type = "button";
			b.className = "chip";
			b.textContent = tag;
			b.setAttribute("aria-pressed",
			    String(list.tags.includes(tag)));
			b.title = "Show only the links tagged " + tag;
			b.addEventListener("click", () => toggleTag(tag));
			c.append(b);
			return c;
		}));
		ul.hidden = meta.tags.length === 0;
		ul.setAttribute("aria-label", "Tags of " + link);
	}

	function when(s) {
		const d = new Date(s);
		return isNaN(d.getTime()) ? String(s) : d.toLocaleString();
	}

	/* Parts of the meta line from a list item or a stats answer. */
	function describeState(o) {
		const parts = [];
		if (typeof o.visits === "number")
			parts.push(o.visits === 1 ? "1 visit" :
			    o.visits + " visits");
		if (typeof o.max_visits === "number")
			parts.push("stops after " + o.max_visits);
		if (typeof o.last_visit_at === "string")
			parts.push("last visit " + when(o.last_visit_at));
		if (typeof o.created_at === "string")
			parts.push("created " + when(o.created_at));
		if (typeof o.expires_at === "string") {
			const t = new Date(o.expires_at).getTime();
			parts.push((t <= Date.now() ? "expired " : "expires ") +
			    when(o.expires_at));
		}
		return parts;
	}

	function setMeta(li, parts, expired) {
		const p = li.querySelector(".meta");
		p.replaceChildren();
		if (expired) {
			const b = document.createElement("span");
			b.className = "badge";
			b.textContent = "expired";
			p.append(b, " ");
		}
		p.append(parts.join(" · "));
		p.hidden = false;
	}

	function isExpired(o) {
		if (o.expired === true || o.state === "expired")
			return true;
		if (typeof o.expires_at === "string") {
			const t = new Date(o.expires_at).getTime();
			if (!isNaN(t) && t <= Date.now())
				return true;
		}
		return typeof o.max_visits === "number" &&
		    typeof o.visits === "number" && o.visits >= o.max_visits;
	}

	/*
	 * Visit counts and QR codes, where the server has them.  The first
	 * link of a page asks; a server without the route answers 404 for a
	 * link that exists, and the question is not asked again.
	 */
	async function probeFeatures(items) {
		const rows = Array.from($("links-list").children);
		if (rows.length === 0)
			return;
		if (features.qr === null) {
			const id = rows[0].dataset.id;
			let ok = false;
			try {
				const res = await fetch("/" +
				    encodeURIComponent(id) + "/qr",
				    { method: "GET", cache: "no-store",
				    credentials: "omit", redirect: "manual" });
				ok = res.status === 200 && /^image\//.test(
				    res.headers.get("Content-Type") || "");
				if (res.status === 200 || res.status === 404)
					features.qr = ok;
			} catch (e) {
				ok = false;
			}
			if (features.qr === true)
				document.querySelectorAll(".qr-open").forEach(
				    (b) => { b.hidden = false; });
		}
		if (features.stats === false)
			return;
		const first = await statsFor(rows[0]);
		if (first === false || features.stats !== true)
			return;
		await Promise.all(rows.slice(1).map(statsFor));
	}

	async function statsFor(li) {
		if (!li.isConnected)
			return null;
		const id = li.dataset.id;
		const r = await api("GET", "/" + encodeURIComponent(id) +
		    "/stats");
		if (r.status === 404 && features.stats === null) {
			features.stats = false;
			return false;
		}
		if (!r.ok || !r.data || typeof r.data !== "object")
			return null;
		features.stats = true;
		if ("expires_at" in r.data && features.expiry !== true) {
			features.expiry = true;
			applyFeatures();
		}
		if (Array.isArray(r.data.tags) && features.tags !== true) {
			features.tags = true;
			applyFeatures();
		}
		if (li.isConnected) {
			setMeta(li, describeState(r.data), isExpired(r.data));
			li.querySelector(".visits-open").hidden =
			    !Array.isArray(r.data.by_day);
		}
		return true;
	}

	/* ------------------------------------------------------------ */
	/* visits: a chart per day and the tops, from GET /:id/stats    */
	/* ------------------------------------------------------------ */

	const SVG = "http://www.w3.org/2000/svg";

	function svgEl(name, attrs, text) {
		const e = document.createElementNS(SVG, name);
		for (const [k, v] of Object.entries(attrs || {}))
			e.setAttribute(k, String(v));
		if (text !== undefined)
			e.textContent = text;
		return e;
	}

	function count(n) {
		return typeof n === "number" && isFinite(n) && n > 0 ? n : 0;
	}

	/*
	 * Bars of visits per day, the bots' part stacked above in a paler
	 * colour; the colours come from the style sheet (light and dark).
	 * Each bar says its day and numbers in a <title> (a tooltip, read
	 * by screen readers); the whole says its total.
	 */
	function drawChart(days) {
		const W = 600, H = 160, top = 14, bottom = 18;
		const n = Math.max(days.length, 1);
		const max = Math.max(1, ...days.map((d) => count(d.visits) +
		    count(d.bots)));
		const total = days.reduce((a, d) => a + count(d.visits), 0);
		const bots = days.reduce((a, d) => a + count(d.bots), 0);
		const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H,
		    role: "img", "aria-label": total + " visits and " + bots +
		    " bot visits over " + days.length + " days, at most " +
		    max + " a day" });
		const h = H - top - bottom, step = W / n;
		const bw = Math.max(1, step * 0.8);
		days.forEach((d, i) => {
			const v = count(d.visits), b = count(d.bots);
			const x = i * step + (step - bw) / 2;
			const hv = v / max * h, hb = b / max * h;
			const g = svgEl("g", { class: "day" });
			g.appendChild(svgEl("title", {}, String(d.date) + ": " + v +
			    " visit" + (v === 1 ? "" : "s") + (b > 0 ? ", " + b +
			    " bot" + (b === 1 ? "" : "s") : "")));
			/* A sliver of a bar even at zero, so every day can be
			 * pointed at. */
			g.appendChild(svgEl("rect", { class: "bar", x: x.toFixed(2),
			    y: (top + h - hv).toFixed(2), width: bw.toFixed(2),
			    height: Math.max(hv, 0.5).toFixed(2) }));
			if (b > 0)
				g.appendChild(svgEl("rect", { class: "bar-bot",
				    x: x.toFixed(2), y: (top + h - hv - hb).toFixed(2),
				    width: bw.toFixed(2), height: hb.toFixed(2) }));
			svg.appendChild(g);
		});
		svg.appendChild(svgEl("line", { class: "axis", x1: 0, x2: W,
		    y1: top + h + 0.5, y2: top + h + 0.5 }));
		svg.appendChild(svgEl("text", { x: 0, y: 10 }, String(max)));
		if (days.length > 0) {
			svg.appendChild(svgEl("text", { x: 0, y: H - 4 },
			    String(days[0].date)));
			svg.appendChild(svgEl("text", { x: W, y: H - 4,
			    "text-anchor": "end" },
			    String(days[days.length - 1].date)));
		}
		return svg;
	}

	function fillTop(ol, entries, none) {
		const items = (Array.isArray(entries) ? entries : []).map((e) => {
			const li = document.createElement("li");
			const name = e && typeof e.name === "string" ? e.name : none;
			const n = document.createElement("span");
			n.className = "n";
			n.textContent = " " + count(e && e.visits);
			li.append(name, n);
			return li;
		});
		if (items.length === 0) {
			const li = document.createElement("li");
			li.textContent = "none yet";
			items.push(li);
		}
		ol.replaceChildren(...items);
	}

	function renderVisits(panel, st) {
		const days = st.by_day.filter((d) => d && typeof d.date ===
		    "string");
		const total = days.reduce((a, d) => a + count(d.visits), 0);
		const bots = count(st.bots);
		panel.querySelector(".visits-title").textContent = "Visits in " +
		    "the last " + days.length + " days";
		panel.querySelector(".visits-total").textContent = total +
		    " visit" + (total === 1 ? "" : "s") + (bots > 0 ? " and " +
		    bots + " by bots (not counted)" : "") + ".";
		panel.querySelector(".chart").replaceChildren(drawChart(days));
		fillTop(panel.querySelector(".top-referers"), st.referers,
		    "direct");
		fillTop(panel.querySelector(".top-countries"), st.countries,
		    "unknown");
		fillTop(panel.querySelector(".top-browsers"), st.browsers,
		    "unknown");
	}

	/* ------------------------------------------------------------ */
	/* delete                                                       */
	/* ------------------------------------------------------------ */

	let deleting = null;

	function openDelete(id, link, target, opener) {
		deleting = { id: id, link: link, opener: opener };
		const d = $("delete-dialog");
		clearErrors(d);
		$("delete-short").textContent = link;
		$("delete-target").textContent = target;
		d.showModal();
		/* The safe choice first. */
		d.querySelector(".cancel").focus();
	}

	/*
	 * The DELETE a confirmation dialog's form asks for -> the answer
	 * (404 too: already gone), or null once a refusal is shown in the
	 * dialog with the words "refused: why".
	 */
	async function dialogDelete(form, path, errId, refused) {
		clearErrors(form);
		busy(form, true);
		const r = await api("DELETE", path);
		busy(form, false);
		if (r.sessionEnded)
			return null;
		if (!r.ok && r.status !== 404) {
			showFormError($(errId), refused + ": " + r.message);
			form.querySelector(".cancel").focus();
			return null;
		}
		return r;
	}

	async function onDelete(ev) {
		ev.preventDefault();
		if (!deleting)
			return;
		const r = await dialogDelete(ev.currentTarget, "/" +
		    encodeURIComponent(deleting.id), "delete-error",
		    "Not deleted");
		if (r === null)
			return;
		const link = deleting.link;
		deleting = null;
		$("delete-dialog").close();
		announce(r.ok ? link + " was deleted." : link +
		    " was already gone.");
		await loadPage(true);
	}

	/* ------------------------------------------------------------ */
	/* export and import                                            */
	/* ------------------------------------------------------------ */

	/* The file name a Content-Disposition suggests, without any
	 * folder; "" if it suggests none. */
	function dispositionName(h) {
		let m = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(h || "");
		let name = "";
		if (m) {
			try {
				name = decodeURIComponent(m[1].trim());
			} catch (e) {
				name = "";
			}
		}
		if (name === "" && (m = /filename\s*=\s*"([^"]*)"/i.exec(h ||
		    "")))
			name = m[1];
		else if (name === "" && (m = /filename\s*=\s*([^;\s]+)/i.exec(
		    h || "")))
			name = m[1];
		return name.replace(/^.*[\\/]/, "");
	}

	/* GET /export with the token, then the answer handed to the
	 * browser as a download (a link to a blob: the token cannot ride
	 * on a plain link). */
	async function onExport() {
		const b = $("export");
		const err = $("export-error");
		err.hidden = true;
		b.disabled = true;
		const r = await api("GET", "/export", undefined, { raw: true });
		if (r.sessionEnded)
			return;
		let blob = null;
		if (r.ok)
			blob = await r.response.blob().catch(() => null);
		b.disabled = false;
		if (!r.ok || blob === null) {
			showFormError(err, "Not exported: " + (r.ok ? "the " +
			    "answer broke off; try again." : r.message));
			return;
		}
		const name = dispositionName(r.headers.get(
		    "Content-Disposition")) || "shortd-links.csv";
		const url = URL.createObjectURL(blob);
		const a = document.createElement("a");
		a.href = url;
		a.download = name;
		a.hidden = true;
		document.body.append(a);
		a.click();
		a.remove();
		window.setTimeout(() => URL.revokeObjectURL(url), 60000);
		announce("Your links were exported to " + name + ".");
	}

	function plural(n, one, many) {
		return n + " " + (n === 1 ? one : many);
	}

	function fillTable(table, rows) {
		table.tBodies[0].replaceChildren(...rows.map((cells) => {
			const tr = document.createElement("tr");
			for (const c of cells) {
				const td = document.createElement("td");
				td.textContent = c;
				tr.append(td);
			}
			return tr;
		}));
		table.parentElement.hidden = rows.length === 0;
	}

	/* POST /import with the file as it is (text/csv); what was made,
	 * renamed and skipped, shown as the server says. */
	async function onImport(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		$("import-result").hidden = true;
		const file = $("import-file").files[0];
		if (!file) {
			fieldError("import-file", "Choose a CSV file to import.");
			$("import-file").focus();
			return;
		}
		busy(form, true);
		const r = await api("POST", "/import", undefined,
		    { file: file, type: "text/csv" });
		busy(form, false);
		if (r.sessionEnded)
			return;
		const d = r.data;
		if (!r.ok || !d || typeof d.created !== "number") {
			if (r.ok)
				r.message = "The server's answer had no count.";
			if (r.status === 400 || r.status === 413)
				fieldError("import-file", r.message);
			else
				showFormError($("import-error"), "Not imported: " +
				    r.message);
			$("import-file").focus();
			return;
		}
		const skipped = Array.isArray(d.skipped) ? d.skipped : [];
		const renamed = Array.isArray(d.renamed) ? d.renamed : [];
		const text = (v) => v === null || v === undefined ? "—" :
		    String(v);
		fillTable($("import-renamed"), renamed.map((x) => [text(x.line),
		    text(x.id), text(x.new_id)]));
		fillTable($("import-skipped"), skipped.map((x) => [text(x.line),
		    text(x.id), typeof x.message === "string" &&
		    x.message !== "" ? sentence(x.message) :
		    sentence(text(x.detail))]));
		const summary = plural(d.created, "link", "links") +
		    " created from " + file.name + (renamed.length > 0 ? "; " +
		    renamed.length + " with a new id" : "") + (skipped.length > 0 ?
		    "; " + plural(skipped.length, "row", "rows") + " skipped" :
		    "") + ".";
		$("import-summary").textContent = summary;
		$("import-result").hidden = false;
		form.reset();
		announce(summary);
		$("import-summary").focus();
		list.cursors = [null];
		list.index = 0;
		await loadPage();
	}

	/* ------------------------------------------------------------ */
	/* API keys                                                     */
	/* ------------------------------------------------------------ */

	/* The keys' list; the first answer also says whether the server
	 * has keys at all (404: it does not). */
	async function loadKeys() {
		const err = $("keys-error");
		const r = await api("GET", "/users/keys");
		if (r.sessionEnded || !session.token)
			return;
		if (r.status === 404 || r.status === 405) {
			features.keys = false;
			return;
		}
		if (!r.ok || !r.data || !Array.isArray(r.data.items)) {
			showFormError(err, "Your keys could not be loaded: " +
			    (r.ok ? "the answer had no list." : r.message));
			return;
		}
		features.keys = true;
		err.hidden = true;
		const items = r.data.items.filter((k) => k &&
		    typeof k.id === "string" && typeof k.name === "string");
		$("keys-list").replaceChildren(...items.map(makeKeyRow));
		$("keys-empty").hidden = items.length > 0;
	}

	function makeKeyRow(k) {
		const li = $("key-template").content.firstElementChild.
		    cloneNode(true);
		li.dataset.id = k.id;
		li.querySelector(".key-name").textContent = k.name;
		li.querySelector(".key-meta").textContent = [
		    "created " + when(k.created_at),
		    typeof k.expires_at === "string" ? (new Date(k.expires_at).
		    getTime() <= Date.now() ? "expired " : "expires ") +
		    when(k.expires_at) : "never expires",
		    typeof k.last_used_at === "string" ? "last used " +
		    when(k.last_used_at) : "never used"].join(" · ");
		const b = li.querySelector(".revoke-open");
		b.setAttribute("aria-label", "Revoke the key " + k.name);
		b.addEventListener("click", () => openRevoke(k, b));
		return li;
	}

	/* A date from the picker -> the end of that day, local time, as
	 * RFC 3339; null if it is not a date. */
	function endOfDay(ymd) {
		const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd);
		if (!m)
			return null;
		const d = new Date(Number(m[1]), Number(m[2]) - 1,
		    Number(m[3]), 23, 59, 59);
		return isNaN(d.getTime()) ? null :
		    d.toISOString().replace(/\.\d+Z$/, "Z");
	}

	async function onCreateKey(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		const name = $("key-name").value.trim();
		const day = $("key-expires").value;
		const body = { name: name, expires_at: null };
		if (name === "")
			fieldError("key-name", "Name the key, for instance " +
			    "after the program that will use it.");
		if (day !== "" && (body.expires_at = endOfDay(day)) === null)
			fieldError("key-expires", "Pick a day, or leave it " +
			    "empty for a key that never expires.");
		if (form.querySelector("[aria-invalid]")) {
			form.querySelector("[aria-invalid]").focus();
			return;
		}
		busy(form, true);
		const r = await api("POST", "/users/keys", body);
		busy(form, false);
		if (r.sessionEnded)
			return;
		if (!r.ok || !r.data || typeof r.data.key !== "string") {
			if (r.ok)
				r.message = "The server's answer had no key.";
			if (r.status === 400 && /^invalid name\b/i.test(r.message))
				fieldError("key-name", r.message);
			else if (r.status === 400 && /expires/i.test(r.message))
				fieldError("key-expires", r.message);
			else
				showFormError($("key-error"), r.message);
			(form.querySelector("[aria-invalid]") ||
			    $("key-name")).focus();
			return;
		}
		form.reset();
		$("key-new-name").textContent = r.data.name;
		$("key-new-value").value = r.data.key;
		const copy = $("key-new-copy");
		copy.textContent = "Copy";
		delete copy.dataset.state;
		delete copy.dataset.copied;
		$("key-new").hidden = false;
		announce("The key " + r.data.name + " was created: copy it " +
		    "now, it is shown only this once.");
		copy.focus();
		await loadKeys();
	}

	/* The new key leaves the page: nothing keeps it. */
	function hideNewKey() {
		$("key-new").hidden = true;
		$("key-new-value").value = "";
		$("key-new-name").textContent = "";
		delete $("key-new-copy").dataset.copied;
		clearErrors($("key-new"));
	}

	let revoking = null;

	function openRevoke(k, opener) {
		revoking = { id: k.id, name: k.name, opener: opener };
		const d = $("revoke-dialog");
		clearErrors(d);
		$("revoke-name").textContent = k.name;
		d.showModal();
		d.querySelector(".cancel").focus();
	}

	async function onRevoke(ev) {
		ev.preventDefault();
		if (!revoking)
			return;
		const r = await dialogDelete(ev.currentTarget, "/users/keys/" +
		    encodeURIComponent(revoking.id), "revoke-error",
		    "Not revoked");
		if (r === null)
			return;
		const name = revoking.name;
		revoking = null;
		$("revoke-dialog").close();
		announce(r.ok ? "The key " + name + " was revoked." :
		    "The key " + name + " was already revoked.");
		await loadKeys();
		$("keys-title").focus();
	}

	/* ------------------------------------------------------------ */
	/* deleting the account                                         */
	/* ------------------------------------------------------------ */

	function openAccountDelete() {
		const d = $("account-dialog");
		$("account-form").reset();
		clearErrors(d);
		$("account-username").value = session.username;
		$("account-confirm-name").textContent = session.username;
		d.showModal();
		/* Cancel first, as for every irreversible step. */
		d.querySelector(".cancel").focus();
	}

	async function onAccountDelete(ev) {
		ev.preventDefault();
		const form = ev.currentTarget;
		clearErrors(form);
		const who = session.username;
		const pw = $("account-password").value;
		if (pw === "")
			fieldError("account-password", "Enter your password.");
		if ($("account-confirm").value !== who)
			fieldError("account-confirm", "Type your username, " +
			    who + ", exactly as shown: nothing was deleted.");
		if (form.querySelector("[aria-invalid]")) {
			form.querySelector("[aria-invalid]").focus();
			return;
		}
		busy(form, true);
		const r = await api("DELETE", "/users", { password: pw });
		busy(form, false);
		if (r.sessionEnded)
			return;
		if (!r.ok) {
			if (r.status === 403 && /password/i.test(r.message))
				fieldError("account-password", r.message);
			else if (r.status === 400 && /password/i.test(r.message))
				fieldError("account-password", r.message);
			else
				showFormError($("account-error"), "Not deleted: " +
				    r.message);
			(form.querySelector("[aria-invalid]") ||
			    form.querySelector(".cancel")).focus();
			return;
		}
		dropSession();
		closeDialogs();
		showAuth();
		announce("The account " + who + " was deleted, with its " +
		    "links and keys. You are logged out.");
		$("auth-title").focus();
	}

	/* ------------------------------------------------------------ */
	/* wiring                                                       */
	/* ------------------------------------------------------------ */

	function init() {
		/* A new request: the last one's news is old. */
		document.addEventListener("submit", clearStatus, true);
		$("login-form").addEventListener("submit", onLogin);
		$("signup-form").addEventListener("submit", onSignup);
		$("shorten-form").addEventListener("submit", onShorten);
		$("password-form").addEventListener("submit", onPassword);
		$("delete-form").addEventListener("submit", onDelete);
		$("revoke-form").addEventListener("submit", onRevoke);
		$("account-form").addEventListener("submit", onAccountDelete);
		$("key-form").addEventListener("submit", onCreateKey);
		$("export").addEventListener("click", onExport);
		$("import-form").addEventListener("submit", onImport);
		$("search-form").addEventListener("submit", onSearch);
		$("search-q").addEventListener("search", () => {
			/* The field's clear button: back to no text. */
			if ($("search-q").value === "" && list.q !== "") {
				list.q = "";
				reloadFiltered();
			}
		});
		$("sort").addEventListener("change", () => {
			list.sort = $("sort").value;
			reloadFiltered();
		});
		$("filters-clear").addEventListener("click", () => {
			/* The text and the tags go; the order stays. */
			list.q = "";
			list.tags = [];
			$("search-q").value = "";
			reloadFiltered();
			$("search-q").focus();
		});
		$("account-delete-open").addEventListener("click",
		    openAccountDelete);
		$("key-new-copy").addEventListener("click", () => onCopy(
		    $("key-new-copy"), $("key-new-value").value,
		    $("key-new-error"), "the key"));
		$("key-new-value").addEventListener("focus",
		    () => $("key-new-value").select());
		$("key-new-done").addEventListener("click", () => {
			hideNewKey();
			$("key-name").focus();
		});
		$("logout").addEventListener("click", onLogout);
		$("password-open").addEventListener("click", openPassword);
		$("result-copy").addEventListener("click", () => onCopy(
		    $("result-copy"), $("result-link").href,
		    $("shorten-error")));
		document.querySelectorAll("dialog .cancel").forEach((b) => {
			b.addEventListener("click",
			    () => b.closest("dialog").close());
		});
		$("delete-dialog").addEventListener("close", () => {
			if (deleting && deleting.opener.isConnected)
				deleting.opener.focus();
			deleting = null;
		});
		$("password-dialog").addEventListener("close",
		    () => $("password-open").focus());
		$("revoke-dialog").addEventListener("close", () => {
			if (revoking && revoking.opener.isConnected)
				revoking.opener.focus();
			revoking = null;
		});
		$("account-dialog").addEventListener("close", () => {
			if (session.token)
				$("account-delete-open").focus();
		});
		$("page-prev").addEventListener("click", () => {
			if (list.index === 0)
				return;
			list.cursors.pop();
			list.index--;
			loadPage(true);
		});
		$("page-next").addEventListener("click", () => {
			if (list.next === null)
				return;
			list.cursors.push(list.next);
			list.index++;
			loadPage(true);
		});
		let limit = 10;
		try {
			limit = Number(sessionStorage.getItem(PAGE_KEY)) || 10;
		} catch (e) {
			limit = 10;
		}
		const sel = $("page-size");
		if (Array.from(sel.options).some((o) => Number(o.value) ===
		    limit))
			sel.value = String(limit);
		list.limit = Number(sel.value);
		sel.addEventListener("change", () => {
			list.limit = Number(sel.value);
			try {
				sessionStorage.setItem(PAGE_KEY, sel.value);
			} catch (e) {
				/* this tab only */
			}
			list.cursors = [null];
			list.index = 0;
			loadPage();
		});
		if (loadSession())
			showApp();
		else
			showAuth();
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", init);
	else
		init();
})();
