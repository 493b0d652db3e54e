"""The words of signing in and out."""

ZH_CN: dict[str, str] = {
    "Sign in": "登录",
    "Sign out": "退出",
    "User name": "用户名",
    "Password": "密码",
    "Wrong user name or password, or the account is locked.": "用户名或密码错误，或账号已被锁定。",
    "Signed in as %(name)s": "当前用户：%(name)s",
}
