// dom.js: building elements without innerHTML, so text from the server is
// always text (never markup), and without inline styles or handlers, which
// the Content-Security-Policy forbids.

// h('button', {type: 'button', class: 'x', onclick: fn}, 'text', child)
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) {
            continue;
        }
        if (k.startsWith('on') && typeof v === 'function') {
            el.addEventListener(k.slice(2), v);
        } else if (k === 'class') {
            el.className = v;
        } else if (k === 'dataset') {
            Object.assign(el.dataset, v);
        } else {
            el.setAttribute(k, v === true ? '' : String(v));
        }
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === undefined || c === null || c === false) {
            continue;
        }
        if (Array.isArray(c)) {
            append(el, c);
        } else {
            el.append(c instanceof Node ? c : String(c));
        }
    }
}

export function $(id) {
    return document.getElementById(id);
}

export function clear(el) {
    el.replaceChildren();
    return el;
}
