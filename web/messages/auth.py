"""The words of signing in and out."""

ZH_CN: dict[str, str] = {
    "Sign in": "登录",
    "Sign out": "退出",
    "User name": "用户名",
    "Password": "密码",
    "Wrong user name or password, or the account is locked.": "用户名或密码错误，或账号已被锁定。",
    "After %(attempts)s wrong passwords in a row an account is locked for %(minutes)s minutes.": (
        "连续 %(attempts)s 次密码错误后，账号将被锁定 %(minutes)s 分钟。"
    ),
    "Too many failed sign-ins from your network. Try again in %(minutes)s minutes.": (
        "您所在网络的登录失败次数过多，请 %(minutes)s 分钟后再试。"
    ),
    "This address uses plain http, so your browser will not keep the sign-in. Open geogrid "
    "over https, or (on a trusted network only) set GEOGRID_SECURE_COOKIES=false.": (
        "此地址使用不加密的 http，浏览器不会保存登录状态。请通过 https 访问，"
        "或（仅限可信网络）设置 GEOGRID_SECURE_COOKIES=false。"
    ),
    "Signed in as %(name)s": "当前用户：%(name)s",
    # The error code of a refusal for too many attempts, as the error page's heading.
    "too_many_requests": "请求过于频繁",
}

#: English words for the error code above.
EN: dict[str, str] = {
    "too_many_requests": "Too many requests",
}
